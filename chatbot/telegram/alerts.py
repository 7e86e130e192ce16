"""/alert, /alerts and the pushes (alerts fired, orders filled) rendered for Telegram."""

from __future__ import annotations

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden, RetryAfter

from chatbot.alerts.outbox import Push, PushBlocked, PushRetryLater
from chatbot.service.errors import UserError
from chatbot.service.reconciliation import ORDER_NOTICE
from chatbot.storage.tables import AlertRow, OutboxRow
from chatbot.telegram import callbacks
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t
from chatbot.telegram.orders import send_order_notice


def condition(direction: str, threshold: int, percent: str | None, language: str) -> str:
    if percent:
        return f"{percent}% ({threshold:,})"
    if language == "ko":
        return f"{threshold:,}원 {'이상' if direction == 'above' else '이하'}"
    return f"{'≥' if direction == 'above' else '≤'} {threshold:,}"


def _describe(row: AlertRow, language: str) -> str:
    repeat = " · repeat" if row.repeat else ""
    paused = " · ⏸" if row.status == "paused" else " · ⏳" if row.status == "cooling" else ""
    return f"#{row.id} {row.name} ({row.code}) {condition(row.direction, row.threshold, row.percent, language)}" \
           f"{repeat}{paused}"


@user_errors
async def alert(update: Update, context: Context) -> None:
    """/alert <symbol> above|below <price> [repeat] · /alert <symbol> ±N% · /alert off <id>."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    args = context.args or []
    language = lang(update)
    svc = services(context).alerts
    if args and args[0].lower() in ("off", "del", "delete", "해제", "삭제"):
        if len(args) != 2:
            raise UserError("usage_alert")
        row = await svc.delete(user.id, args[1])
        await reply(update, context, t("alert_deleted", language, id=row.id))
        return
    row = await svc.create(user.id, chat.id, language, args)
    await reply(update, context, t("alert_set", language, id=row.id, name=row.name,
                                   condition=condition(row.direction, row.threshold, row.percent, language),
                                   price=row.reference_price, repeat=" · repeat" if row.repeat else ""))


@user_errors
async def alerts(update: Update, context: Context) -> None:
    """/alerts: every active alert with a delete button."""
    assert update.effective_user is not None
    language = lang(update)
    rows = await services(context).alerts.list(update.effective_user.id)
    if not rows:
        await reply(update, context, t("no_alerts", language))
        return
    text = "\n".join([t("alerts_title", language, count=len(rows))] + [_describe(r, language) for r in rows])
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(f"🗑 #{r.id} {r.name}", callback_data=callbacks.pack(
        callbacks.DELETE_ALERT, str(r.id)))] for r in rows[:30]])
    await reply(update, context, text, keyboard)


@user_errors
async def delete_button(update: Update, context: Context) -> None:
    """A delete button from /alerts (only the owner's own alerts can be deleted)."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    cb = callbacks.unpack(query.data)
    if cb is not None:
        row = await services(context).alerts.delete(update.effective_user.id, cb.value)
        await query.answer(t("alert_deleted", lang(update), id=row.id))
    else:
        await query.answer()


def push_for(bot: Bot) -> Push:
    """Send an outbox row as a Telegram message; map Telegram's refusals for the outbox."""

    async def push(row: OutboxRow) -> object:
        payload = row.payload
        language = str(payload.get("lang", "ko"))
        if row.kind == ORDER_NOTICE:  # an order's outcome learned late: its card is edited
            try:
                return await send_order_notice(bot, row.chat_id, payload)
            except Forbidden:
                raise PushBlocked() from None
            except RetryAfter as exc:
                delay = exc.retry_after
                raise PushRetryLater(delay if isinstance(delay, int | float) else delay.total_seconds()) from None
        if row.kind == "alert":
            text = t("push_alert", language, name=payload["name"], code=payload["code"], price=payload["price"],
                     condition=condition(payload["direction"], payload["threshold"], payload.get("percent"), language),
                     time=_hms(str(payload.get("time", ""))))
        else:
            side = t("buy" if payload["side"] == "buy" else "sell", language)
            text = t("push_fill", language, name=payload["name"], side=side, quantity=payload["quantity"],
                     price=payload["price"], order_no=payload["order_no"])
        try:
            return await bot.send_message(row.chat_id, text)
        except Forbidden:
            raise PushBlocked() from None
        except RetryAfter as exc:
            delay = exc.retry_after
            raise PushRetryLater(delay if isinstance(delay, int | float) else delay.total_seconds()) from None

    return push


def _hms(text: str) -> str:
    return f"{text[:2]}:{text[2:4]}:{text[4:6]}" if len(text) == 6 else text
