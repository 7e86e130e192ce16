"""/alert and /alerts (a fired alert's push is rendered by :mod:`chatbot.telegram.notifier`)."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError

from chatbot.service.alerts import AlertView
from chatbot.service.errors import UserError
from chatbot.service.us_alerts import us_alert_ticker
from chatbot.service.views import Money
from chatbot.telegram import callbacks, render, us_render
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)


def condition(direction: str, threshold: Money, percent: str | None, language: str) -> str:
    """``₩70,000 이상``, ``≥ $190.25``, ``+5% (₩73,500)``: the amount with its currency's sign, never bare."""
    return us_render.alert_condition(direction, threshold, percent, language)


def _describe(view: AlertView, language: str) -> str:
    repeat = " · repeat" if view.repeat else ""
    paused = " · ⏸" if view.status == "paused" else " · ⏳" if view.status == "cooling" else ""
    code = us_alert_ticker(view.code) or view.code
    flag = " 🇺🇸" if code != view.code else ""
    return f"#{view.id} {render.esc(view.display_name(language))} ({code}){flag} " \
           f"{condition(view.direction, view.threshold_money, view.percent, language)}{repeat}{paused}"


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
        deleted = await svc.delete(user.id, args[1])
        await reply(update, context, t("alert_deleted", language, id=deleted.id))
        return
    await reply(update, context, await _set(update, context, args))


@user_errors
async def pick(update: Update, context: Context) -> None:
    """A candidate stock offered for an /alert whose stock was ambiguous: that alert set, as if typed with
    the stock's code (checked again like any typed one; the same alert twice is refused as typed), the
    candidates replaced by what was set."""
    query = update.callback_query
    assert query is not None
    cb = callbacks.unpack(query.data)
    alert_pick = cb is not None and cb.kind == callbacks.COMMAND_PICKS["alert"]
    args = callbacks.command_args(cb.value) if cb is not None and alert_pick else None
    if args is None:
        await query.answer(t("popup_unknown", lang(update)), show_alert=True)
        return
    text = await _set(update, context, args)  # errors: @user_errors
    await query.answer()
    try:
        await query.edit_message_text(text)
    except TelegramError as exc:  # set all the same: said in a message of its own
        log.warning("could not turn the candidates into the alert", extra={"error": type(exc).__name__})
        await reply(update, context, text)


async def _set(update: Update, context: Context, args: list[str]) -> str:
    """/alert <symbol> above|below <price> [repeat] · /alert <symbol> ±N%: set it; what to say."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    language = lang(update)
    svc = services(context).alerts
    us = services(context).us
    us_request = us.alerts.request(args) if us is not None and us.alerts is not None else None
    if us is not None and us.alerts is not None and us_request is not None:  # a US ticker: the HDFSCNT0 feed
        view = await us.alerts.create(user.id, chat.id, language, *us_request)
        return (t("us_alert_set", language, id=view.id, name=view.name, code=us_alert_ticker(view.code) or view.code,
                  condition=condition(view.direction, view.threshold_money, view.percent, language),
                  price=str(view.reference_money), repeat=" · repeat" if view.repeat else "")
                + (t("alert_polled", language, seconds=view.polled_every) if view.polled_every else "")
                + (t("alert_halted", language) if view.halted else ""))
    view = await svc.create(user.id, chat.id, language, args)
    return (t("alert_set", language, id=view.id, name=view.display_name(language),
              condition=condition(view.direction, view.threshold_money, view.percent, language),
              price=str(view.reference_money), repeat=" · repeat" if view.repeat else "")
            + (t("alert_polled", language, seconds=view.polled_every) if view.polled_every else "")
            + (t("alert_halted", language) if view.halted else ""))


@user_errors
async def alerts(update: Update, context: Context) -> None:
    """/alerts: every active alert with a delete button."""
    assert update.effective_user is not None
    language = lang(update)
    text, keyboard = _alerts_list(await services(context).alerts.active(update.effective_user.id), language)
    await reply(update, context, text, keyboard)


def _alerts_list(views: list[AlertView], language: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /alerts message: every active alert with a delete button."""
    if not views:
        return t("no_alerts", language), None
    title = t("alerts_title", language, count=len(views))  # 50 alerts on long-named ETFs exceed 4096 characters
    text = "\n".join([title, *render.fit_lines([_describe(v, language) for v in views],
                                                render.MESSAGE_BUDGET - len(title) - 1, language)])
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(f"🗑 #{v.id} {v.display_name(language)}", callback_data=callbacks.pack(
        callbacks.DELETE_ALERT, str(v.id)))] for v in views[:30]])
    return text, keyboard


@user_errors
async def delete_button(update: Update, context: Context) -> None:
    """A delete button from /alerts (only the owner's own alerts can be deleted)."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    cb = callbacks.unpack(query.data)
    if cb is not None:
        deleted = await services(context).alerts.delete(update.effective_user.id, cb.value)
        language = lang(update)
        await query.answer(t("alert_deleted", language, id=deleted.id))
        # the list it was pressed on loses the deleted alert (it went on showing it, with its button)
        text, keyboard = _alerts_list(await services(context).alerts.active(update.effective_user.id), language)
        try:
            await query.edit_message_text(text, reply_markup=keyboard)
        except TelegramError as exc:
            log.warning("could not refresh the /alerts list", extra={"error": type(exc).__name__})
    else:
        await query.answer()

