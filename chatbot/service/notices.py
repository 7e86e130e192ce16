"""What the bot tells a user on its own, for a front end's notifier: the notice types, the
:class:`Notifier` protocol a front end implements, and the views a notice is rendered from.

The types live with the outbox that carries them (:mod:`chatbot.alerts.notices`); a front end takes
them from here, the service being all it knows."""

from __future__ import annotations

from chatbot.alerts.notices import (
    AlertFired,
    Blocked,
    CardSnapshot,
    Delivered,
    Delivery,
    Notice,
    Notifier,
    OrderFilled,
    OrderOutcome,
    RetryLater,
)
from chatbot.kis.models import OrderSide
from chatbot.service import fees
from chatbot.service.us_cards import us_card_detail
from chatbot.service.views import ConfirmResult, Mode, OrderCard, OrderNotice, Outcome
from chatbot.storage.types import utcnow
from chatbot.symbols import Symbol

__all__ = ["AlertFired", "Blocked", "CardSnapshot", "Delivered", "Delivery", "Notice", "Notifier", "OrderFilled",
           "OrderOutcome", "RetryLater", "outcome_view"]


def outcome_view(notice: OrderOutcome) -> OrderNotice:
    """The card view of an outcome told late, as the card showed it (amount and fees recomputed)."""
    c = notice.card
    side = OrderSide(c.side)
    if c.market == "US":  # dollars: the US card view
        us = us_card_detail(side, c.price, c.quoted_price, c.quantity, c.exchange, c.order_type)
        card = OrderCard(token=c.token, mode=Mode(c.mode), action=c.action, side=side,
                         symbol=Symbol(c.code, c.name, c.name_en, c.exchange), quantity=c.quantity, price=None,
                         quoted_price=0, amount=0, commission=0, tax=0, expires_at=utcnow(), order_no=c.order_no, us=us)
        result = ConfirmResult(Outcome(notice.outcome), card, order_no=notice.order_no, message=notice.message)
        return OrderNotice(result, notice.message_id, notice.language)
    amount = (c.price if c.price is not None else c.quoted_price) * c.quantity
    commission, tax = fees.estimate(side, amount)
    card = OrderCard(token=c.token, mode=Mode(c.mode), action=c.action, side=side,
                     symbol=Symbol(c.code, c.name, c.name_en, ""), quantity=c.quantity, price=c.price,
                     quoted_price=c.quoted_price, amount=amount, commission=commission, tax=tax,
                     expires_at=utcnow(), order_no=c.order_no)
    result = ConfirmResult(Outcome(notice.outcome), card, order_no=notice.order_no, message=notice.message)
    return OrderNotice(result, notice.message_id, notice.language)
