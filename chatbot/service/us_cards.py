"""A US card's dollar figures from a stored row (prices in dollars): used by the card shown now
(:mod:`.us_orders`) and by an outcome told late (:mod:`.notices`, whose snapshot counts prices in
:attr:`Currency.USD.price_units <chatbot.markets.money.Currency.price_units>`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from chatbot.kis.models import OrderSide
from chatbot.kis.overseas_protocol import UsOrderDivision
from chatbot.markets.money import Currency, Money
from chatbot.markets.profile import US
from chatbot.service.us_views import UsCardDetail

SCALE = Decimal(Currency.USD.price_units)  # price units per dollar (the alert book's, notices')


def from_units(units: int | None) -> Decimal | None:
    return None if units is None else Decimal(units) / SCALE


def fees(side: OrderSide, amount: Money) -> Money:
    """Estimated commission and sell-side charges, from the US market profile."""
    commission, tax = US.costs(amount, sell=side is OrderSide.SELL)
    return commission + tax


def us_card_detail(side: OrderSide, price: Decimal | None, quoted_price: Decimal, quantity: int, exchange: str,
                   order_type: str, *, krw_per_usd: Decimal = Decimal(0), session: str = "",
                   next_open: dt.datetime | None = None, reservation: bool = False,
                   next_close: dt.datetime | None = None) -> UsCardDetail:
    if order_type in UsOrderDivision.__members__:
        division = UsOrderDivision[order_type]
    else:  # a reservation's cancel (RESV): without a price it is a MOO sell, the one unpriced reservation
        division = UsOrderDivision.MOO if reservation and price is None else UsOrderDivision.LIMIT
    price_money = Money.usd(price) if price is not None else None
    quoted = Money.usd(quoted_price)
    amount = (price_money or quoted) * quantity
    meets = "reservation" if reservation else "open" if division.at_open else "close" if division.at_close else "now"
    return UsCardDetail(exchange=exchange or "", order_type=division.name, price=price_money, quoted_price=quoted,
                        amount=amount, fees=fees(side, amount), krw_per_usd=krw_per_usd, session=session,
                        meets=meets, next_open=next_open, next_close=next_close)
