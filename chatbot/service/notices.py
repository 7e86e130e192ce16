"""What the bot tells a user on its own, for a front end's notifier: the notice types, the
:class:`Notifier` protocol a front end implements, and the views a notice is rendered from.

The types live with the outbox that carries them (:mod:`chatbot.alerts.notices`); a front end takes
them from here, the service being all it knows."""

from __future__ import annotations

from decimal import Decimal

from chatbot.alerts.daily_report import DailyReport
from chatbot.alerts.notices import (
    AlertFired,
    Blocked,
    CardSnapshot,
    ConditionalNotice,
    Delivered,
    Delivery,
    Notice,
    Notifier,
    OrderFilled,
    OrderOutcome,
    OrderRefused,
    RetryLater,
)
from chatbot.broker import OrderSide
from chatbot.markets.money import Money
from chatbot.markets.profile import market_of
from chatbot.service.us_cards import from_units, us_card_detail
from chatbot.service.views import ConfirmResult, Mode, OrderCard, OrderNotice, Outcome, StandingOrder
from chatbot.storage.types import utcnow
from chatbot.symbols import Symbol

__all__ = ["AlertFired", "Blocked", "CardSnapshot", "ConditionalNotice", "DailyReport", "Delivered", "Delivery", "Notice", "Notifier", "OrderFilled",
           "OrderOutcome", "OrderRefused", "RetryLater", "outcome_view", "standing_of"]


def standing_of(notice: OrderRefused) -> StandingOrder | None:
    """A refused revision or cancellation: the order it named, as it stood when the refusal came (None: the
    notice is of an order refused)."""
    if not notice.change:
        return None
    price = notice.original_price_money if notice.original_price else None  # 0: a market order
    return StandingOrder(notice.original_order_no or "?", notice.original_open, notice.original_remaining, price)


def outcome_view(notice: OrderOutcome) -> OrderNotice:
    """The card view of an outcome told late, as the card showed it (amount and fees recomputed)."""
    c = notice.card
    side = OrderSide(c.side)
    if c.market == "US":  # prices stored in ten-thousandths of a dollar: the US card view
        us = us_card_detail(side, from_units(c.price), from_units(c.quoted_price) or Decimal(0), c.quantity,
                            c.exchange, c.order_type)
        card = OrderCard(token=c.token, mode=Mode(c.mode), action=c.action, side=side,
                         symbol=Symbol(c.code, c.name, c.name_en, c.exchange), quantity=c.quantity, price=us.price,
                         quoted_price=us.quoted_price, amount=us.amount, commission=us.fees, tax=Money.usd(0),
                         expires_at=utcnow(), order_no=c.order_no, us=us)
        result = ConfirmResult(Outcome(notice.outcome), card, order_no=notice.order_no, message=notice.message)
        return OrderNotice(result, notice.message_id, notice.language)
    symbol = Symbol(c.code, c.name, c.name_en, "")
    market = market_of(symbol)
    price = None if c.price is None else market.money(c.price)
    quoted = market.money(c.quoted_price)
    amount = (price if price is not None else quoted) * c.quantity
    commission, tax = market.costs(amount, sell=side is OrderSide.SELL)
    card = OrderCard(token=c.token, mode=Mode(c.mode), action=c.action, side=side,
                     symbol=symbol, quantity=c.quantity, price=price,
                     quoted_price=quoted, amount=amount, commission=commission, tax=tax,
                     expires_at=utcnow(), order_no=c.order_no)
    result = ConfirmResult(Outcome(notice.outcome), card, order_no=notice.order_no, message=notice.message)
    return OrderNotice(result, notice.message_id, notice.language)
