"""A US card's dollar figures from a stored row (prices in whole ten-thousandths of a dollar): used by
the card shown now (:mod:`.us_orders`) and by an outcome told late (:mod:`.notices`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from chatbot.kis.models import OrderSide
from chatbot.kis.overseas_protocol import UsOrderDivision
from chatbot.markets.money import Money
from chatbot.markets.profile import US
from chatbot.service.us_views import UsCardDetail

SCALE = Decimal(10_000)  # a US row's prices: whole ten-thousandths of a dollar


def to_money(units: int | None) -> Money | None:
    return None if units is None else Money.usd(Decimal(units) / SCALE)


def fees(side: OrderSide, amount: Money) -> Money:
    """Estimated commission and sell-side charges, from the US market profile."""
    commission, tax = US.costs(amount, sell=side is OrderSide.SELL)
    return commission + tax


def us_card_detail(side: OrderSide, price_units: int | None, quoted_units: int, quantity: int, exchange: str,
                   order_type: str, *, krw_per_usd: Decimal = Decimal(0), session: str = "",
                   next_open: dt.datetime | None = None) -> UsCardDetail:
    division = UsOrderDivision[order_type] if order_type in UsOrderDivision.__members__ else UsOrderDivision.LIMIT
    price = to_money(price_units)
    quoted = to_money(quoted_units) or Money.usd(0)
    amount = (price or quoted) * quantity
    meets = "open" if division.at_open else "close" if division.at_close else "now"
    return UsCardDetail(exchange=exchange or "", order_type=division.name, price=price, quoted_price=quoted,
                        amount=amount, fees=fees(side, amount), krw_per_usd=krw_per_usd, session=session,
                        meets=meets, next_open=next_open)
