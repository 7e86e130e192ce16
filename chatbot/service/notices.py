"""What the bot tells a user on its own, for a front end's notifier: the notice types, the
:class:`Notifier` protocol a front end implements, and the views a notice is rendered from.

The types live with the outbox that carries them (:mod:`chatbot.alerts.notices`); a front end takes
them from here, the service being all it knows."""

from __future__ import annotations

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
    RetryLater,
)
from chatbot.broker import OrderSide
from chatbot.markets.profile import market_of
from chatbot.service.views import ConfirmResult, Mode, OrderCard, OrderNotice, Outcome
from chatbot.storage.types import utcnow
from chatbot.symbols import Symbol

__all__ = ["AlertFired", "Blocked", "CardSnapshot", "ConditionalNotice", "DailyReport", "Delivered", "Delivery", "Notice", "Notifier", "OrderFilled",
           "OrderOutcome", "RetryLater", "outcome_view"]


def outcome_view(notice: OrderOutcome) -> OrderNotice:
    """The card view of an outcome told late, as the card showed it (amount and fees recomputed)."""
    c = notice.card
    side = OrderSide(c.side)
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
