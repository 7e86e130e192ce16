"""The Telegram notifier: notices (alert fired, order filled, an order's outcome learned late) rendered
as Telegram messages, and Telegram's refusals told to the outbox (blocked → stop, flood wait → later).

Any other error (the network, Telegram down) is raised: the outbox counts it as a failed attempt and
tries again later."""

from __future__ import annotations

import logging

from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, RetryAfter

from chatbot.service.notices import (
    AlertFired,
    Blocked,
    ConditionalNotice,
    DailyReport,
    Delivered,
    Delivery,
    Notice,
    OrderFilled,
    OrderOutcome,
    OrderRefused,
    RetryLater,
    outcome_view,
    standing_of,
)
from chatbot.service.us_alerts import us_alert_ticker
from chatbot.service.views import Currency
from chatbot.telegram import render, report, stops
from chatbot.telegram.alerts import condition
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)


class TelegramNotifier:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(self, chat_id: int, notice: Notice) -> Delivery:
        try:
            if isinstance(notice, OrderOutcome):
                return Delivered(await self._outcome(chat_id, notice))
            if isinstance(notice, DailyReport):
                return Delivered((await self.bot.send_message(chat_id, report.report_text(notice))).message_id)
            if isinstance(notice, ConditionalNotice):
                return Delivered((await self.bot.send_message(chat_id, stops.push_text(notice))).message_id)
            if isinstance(notice, OrderRefused):
                return Delivered((await self.bot.send_message(chat_id, refused_text(notice))).message_id)
            message = await self.bot.send_message(chat_id, text(notice))
            return Delivered(message.message_id)
        except Forbidden:
            return Blocked()
        except RetryAfter as exc:
            delay = exc.retry_after
            return RetryLater(delay if isinstance(delay, int | float) else delay.total_seconds())

    async def _outcome(self, chat_id: int, notice: OrderOutcome) -> int:
        """The card is edited to say the outcome or, when it cannot be (too old, deleted), a new message
        says it; the id of the message that says it. An edit sent twice is harmless ("not modified")."""
        view = outcome_view(notice)
        body = render.late_outcome(view, view.language)
        if view.message_id is not None:
            try:
                edited = await self.bot.edit_message_text(body, chat_id=chat_id, message_id=view.message_id)
                if isinstance(edited, Message):
                    return edited.message_id
            except BadRequest as exc:
                if "not modified" in exc.message.lower():
                    return view.message_id
                log.info("card cannot be edited; saying it in a new message", extra={"detail": exc.message[:80]})
        return (await self.bot.send_message(chat_id, body)).message_id


def text(notice: AlertFired | OrderFilled) -> str:
    """A push as the user reads it: amounts with their currency's sign (₩, $), from the notice's currency."""
    language = notice.language
    price = str(notice.price_money)
    if isinstance(notice, AlertFired):
        cond = condition(notice.direction, notice.threshold_money, notice.percent, language)
        number = t("push_alert_number", language, id=notice.alert_id)  # which of one's alerts (/alerts)
        if notice.currency == Currency.USD and (ticker := us_alert_ticker(notice.code)) is not None:
            return t("us_push_alert", language, name=notice.name, code=ticker, price=price, condition=cond,
                     time=_hms(notice.time)) + number
        return t("push_alert", language, name=notice.name, code=notice.code, price=price, condition=cond,
                 time=_hms(notice.time)) + number
    side = t("buy" if notice.side == "buy" else "sell", language)
    if notice.price_basis:  # told from KIS's list: an average, not one execution's price
        price = f"{t('report_avg', language)} {price}"
    if notice.currency == Currency.USD:  # a US fill
        return t("us_push_fill", language, name=notice.name, code=notice.code, side=side,
                 quantity=notice.quantity, price=price, order_no=notice.order_no)
    return t("push_fill", language, name=notice.name, side=side, quantity=notice.quantity, price=price,
             order_no=notice.order_no)


def refused_text(notice: OrderRefused) -> str:
    """An accepted order the exchange refused afterwards: what, and that it will not fill. An accepted
    revision or cancellation it refused: that it did not take, and how the order it named stands."""
    language = notice.language
    side = t("buy" if notice.side == "buy" else "sell", language)
    price = f" @ {notice.price_money}" if notice.price else ""
    name = notice.name if notice.currency == Currency.KRW else f"{notice.name} ({notice.code})"
    if (original := standing_of(notice)) is not None:
        told = t(f"push_change_refused_{notice.change}", language, name=name, side=side, quantity=notice.quantity,
                 price=price, order_no=notice.order_no, original_no=original.order_no)
        told += "\n" + render.standing_order(original, language)
    else:
        told = t("push_refused", language, name=name, side=side, quantity=notice.quantity, price=price,
                 order_no=notice.order_no)
    return told + t("push_refused_reason", language, reason=notice.reason) if notice.reason else told


def _hms(text: str) -> str:
    return f"{text[:2]}:{text[2:4]}:{text[4:6]}" if len(text) == 6 else text
