"""/buy, /sell, /orders, /cancel and the confirmation buttons.

A command becomes a confirmation card; only the owner's first press of Confirm on that card,
before it expires, sends anything to KIS. The keyboard goes away on the first accepted press and
the card is edited to the result.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, Chat, Message, Update
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from chatbot.kis.models import OrderSide
from chatbot.service.errors import UserError
from chatbot.service.reconciliation import order_notice
from chatbot.service.views import ConfirmResult, Outcome
from chatbot.telegram import callbacks, render
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)
MAX_SYMBOL_WORDS = 4


def _is_number(text: str) -> bool:
    return text.replace(",", "").isdigit()


def split_order_args(args: list[str], usage: str) -> tuple[str, str, str | None]:
    """``<symbol words…> <qty> [<price>|market]`` → (symbol, qty, price)."""
    if len(args) < 2:
        raise UserError(usage)
    if len(args) >= 3 and _is_number(args[-2]):
        symbol_words, qty, price = args[:-2], args[-2], args[-1]
    else:
        symbol_words, qty, price = args[:-1], args[-1], None
    if len(symbol_words) > MAX_SYMBOL_WORDS or any(_is_number(w) for w in symbol_words[1:]):
        raise UserError("too_many_args")
    return " ".join(symbol_words), qty, price


async def _order(update: Update, context: Context, side: OrderSide) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    usage = "usage_buy" if side is OrderSide.BUY else "usage_sell"
    symbol, qty, price = split_order_args(context.args or [], usage)
    trading = services(context).trading
    card = await trading.prepare_order(user.id, chat.id, side, symbol, qty, price)
    text, keyboard = render.card(card, lang(update))
    message = await reply(update, context, text, keyboard)
    await trading.attach_card(card, user.id, message.message_id)


@user_errors
async def buy(update: Update, context: Context) -> None:
    """/buy <symbol> <qty> [<price>|market]: a confirmation card for a buy."""
    await _order(update, context, OrderSide.BUY)


@user_errors
async def sell(update: Update, context: Context) -> None:
    """/sell <symbol> <qty> [<price>|market]: a confirmation card for a sell."""
    await _order(update, context, OrderSide.SELL)


@user_errors
async def orders(update: Update, context: Context) -> None:
    """/orders: today's open orders."""
    assert update.effective_user is not None
    view = await services(context).trading.open_orders(update.effective_user.id)
    text, _ = render.open_orders(view, lang(update))
    await reply(update, context, text)


@user_errors
async def cancel(update: Update, context: Context) -> None:
    """/cancel: open orders as buttons; /cancel <order_no>: a confirmation card for that one."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    args = context.args or []
    trading = services(context).trading
    if len(args) > 1:
        raise UserError("usage_cancel")
    if not args:
        view = await trading.open_orders(user.id)
        text, keyboard = render.open_orders(view, lang(update), for_cancel=True)
        await reply(update, context, text, keyboard)
        return
    await _cancel_card(update, context, args[0])


async def _cancel_card(update: Update, context: Context, order_no: str) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    trading = services(context).trading
    card = await trading.prepare_cancel(user.id, chat.id, order_no)
    text, keyboard = render.card(card, lang(update))
    message = await reply(update, context, text, keyboard)
    await trading.attach_card(card, user.id, message.message_id)


@user_errors
async def pick_cancel(update: Update, context: Context) -> None:
    """An order button from /cancel: a confirmation card for cancelling it."""
    query = update.callback_query
    assert query is not None
    cb = callbacks.unpack(query.data)
    if cb is not None:
        await _cancel_card(update, context, cb.value)  # a UserError is answered by @user_errors
    await query.answer()


async def card_button(update: Update, context: Context) -> None:
    """Confirm or Cancel on a card. Every press is answered; only a winning press changes anything."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    language = lang(update)
    cb = callbacks.unpack(query.data)
    message = query.message
    if cb is None or message is None:
        await query.answer(t("alert_unknown", language), show_alert=True)
        return
    trading = services(context).trading
    if cb.kind == callbacks.DISMISS:
        result = await trading.dismiss(cb.value, user.id, message.message_id)
        if result.outcome is not Outcome.DISMISSED:
            await _refused(update, result, language)
            return
        await query.answer()
        await _edit(update, render.outcome(result, language))
        return
    claimed = await trading.claim(cb.value, user.id, message.message_id)
    if isinstance(claimed, ConfirmResult):
        await _refused(update, claimed, language)
        return
    try:  # whatever Telegram does now, the claimed card is submitted and settled
        await query.answer(t("alert_sending", language))
    except TelegramError as exc:
        log.warning("could not answer the press", extra={"error": type(exc).__name__})
    await _edit(update, f"{render.card_summary(claimed.card, language)}\n⏳ {t('alert_sending', language)}")
    result = await trading.submit(claimed)
    await _edit(update, render.outcome(result, language))


async def _refused(update: Update, result: ConfirmResult, language: str) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(t(render.ALERT_KEYS.get(result.outcome, "alert_unknown"), language), show_alert=True)
    if result.outcome in (Outcome.EXPIRED, Outcome.REAL_DISABLED) and result.card is not None:
        await _edit(update, render.outcome(result, language))


async def _edit(update: Update, text: str) -> None:
    """Edit the card; a failed edit must never stop or repeat an order, so it is only logged."""
    query = update.callback_query
    assert query is not None
    try:
        await query.edit_message_text(text)
    except BadRequest as exc:
        if "not modified" in exc.message.lower():
            return  # it already says this (two presses settling the same card)
        await _fallback(update, text, exc)
    except TelegramError as exc:
        await _fallback(update, text, exc)


async def _fallback(update: Update, text: str, exc: TelegramError) -> None:
    """The card could not be edited (too old, deleted): say it in a new message instead."""
    query = update.callback_query
    assert query is not None
    log.warning("could not edit the card", extra={"error": type(exc).__name__, "detail": str(exc)[:80]})
    chat = update.effective_chat
    if chat is not None:
        try:
            await query.get_bot().send_message(chat.id, text)
        except TelegramError:
            log.warning("could not send the card result either", extra={"chat_id": chat.id})


async def send_order_notice(bot: Bot, chat_id: int, payload: dict[str, Any]) -> Message:
    """An outcome learned after the card was shown (reconciliation): the card is edited to say it, or,
    when it cannot be (too old, deleted), a new message says it. Refusals that concern the chat
    (blocked, flood wait) and network trouble are raised for the outbox to handle (an edit sent twice
    is harmless: "not modified")."""
    notice = order_notice(payload)
    text = render.late_outcome(notice, notice.language)
    if notice.message_id is not None:
        try:
            edited = await bot.edit_message_text(text, chat_id=chat_id, message_id=notice.message_id)
            if isinstance(edited, Message):
                return edited
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return Message(notice.message_id, date=render.now_kst(), chat=Chat(chat_id, Chat.PRIVATE))
            log.info("card cannot be edited; saying it in a new message", extra={"detail": exc.message[:80]})
        except (Forbidden, RetryAfter):
            raise
    return await bot.send_message(chat_id, text)
