"""Cards on Telegram: sending one (every card: orders, cancellations, the paper reset) and the
Confirm and Cancel buttons on it.

Only the owner's first press of Confirm on the card's own message, before it expires, sends
anything; the service decides that (:meth:`chatbot.service.orders.Orders.confirm`), this module
only shows it: the press is answered at once, the card is edited to "sending…" and then to the
outcome."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError

from chatbot.service.views import ConfirmResult, OrderCard, OrderSide, Outcome
from chatbot.telegram import callbacks, render
from chatbot.telegram.context import Context, lang, reply, services
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)
Attach = Callable[[int, bool, int | None], Awaitable[bool]]  # (message, in place, moved from): attached?


async def send_card(update: Update, context: Context, prepared: Awaitable[OrderCard]) -> None:
    """The one way a card is shown: prepared by the service → rendered → sent → attached to the message
    that shows it (only a press there counts, and the owner's time to decide starts then)."""
    card = await prepared
    user = update.effective_user
    assert user is not None
    text, keyboard = render.card(card, lang(update))
    text += await _covered_warning(context, user.id, card, lang(update))
    message = await reply(update, context, text, keyboard)
    await services(context).orders.attach_card(card, user.id, message.message_id)


async def show_card_in_place(update: Update, context: Context, prepared: Awaitable[OrderCard]) -> None:
    """A card brought by a button (a candidate stock for an order typed): the message the button was on
    becomes the card, attached like any card (only a press there counts, the owner's time starts now);
    see :func:`show_in_place`. A refusal is answered by the handler's @user_errors."""
    card = await prepared
    user = update.effective_user
    assert user is not None
    orders = services(context).orders

    async def attach(message_id: int, in_place: bool, moved_from: int | None) -> bool:
        return await orders.attach_card(card, user.id, message_id, in_place=in_place, moved_from=moved_from)

    async def shown_as() -> tuple[str, InlineKeyboardMarkup]:
        text, keyboard = render.card(card, lang(update))
        return text + await _covered_warning(context, user.id, card, lang(update)), keyboard

    await show_in_place(update, context, attach, shown_as)


async def show_in_place(update: Update, context: Context, attach: Attach,
                        shown_as: Callable[[], Awaitable[tuple[str, InlineKeyboardMarkup]]]) -> None:
    """A card (an order's, a conditional order's) prepared from a button: the message the button was on
    becomes the card. The message is claimed for the card before it is edited: a second tap on the
    candidates, or a late one after the card was pressed, finds it taken and changes nothing (one card per
    message, ever). A message that cannot be edited: the card comes as a new one, attached there. The press
    is answered once the card is prepared."""
    query = update.callback_query
    assert query is not None
    shown = query.message
    taken = shown is not None and not await attach(shown.message_id, True, None)
    try:
        await query.answer(t("popup_already", lang(update)) if taken else None)
    except TelegramError as exc:  # a press answered too late still gets its card
        log.warning("could not answer the press", extra={"error": type(exc).__name__})
    if taken:  # the message is, or was, another card: left as it is
        return
    text, keyboard = await shown_as()
    try:
        edited = await query.edit_message_text(text, reply_markup=keyboard)
        message_id = edited.message_id if isinstance(edited, Message) else shown.message_id if shown else None
    except TelegramError as exc:
        log.warning("could not turn the candidates into the card", extra={"error": type(exc).__name__})
        message_id = None
    if message_id is None:  # the card in a message of its own (one not attached could never be confirmed)
        message_id = (await reply(update, context, text, keyboard)).message_id
        await attach(message_id, False, shown.message_id if shown else None)
    elif shown is None:
        await attach(message_id, False, None)


async def _covered_warning(context: Context, user_id: int, card: OrderCard, language: str) -> str:
    """A sell card of a stock the user's armed conditional orders sell too says so: they stay armed after
    this sale and, firing later, would sell what is held then. "" when none (or they cannot be read)."""
    conditional = services(context).conditional
    if conditional is None or card.action != "order" or card.side is not OrderSide.SELL:
        return ""
    try:
        covering = await conditional.covering(user_id, card.symbol.code)
    except Exception:  # a warning, never a reason to withhold the card
        log.warning("could not read the conditional orders a sell card covers", exc_info=True)
        return ""
    if not covering:
        return ""
    return t("sell_covered_by_conditional", language, orders=", ".join(f"#{i}" for i, _ in covering),
             committed=sum(q for _, q in covering))


async def card_button(update: Update, context: Context) -> None:
    """Confirm or Cancel on a card. Every press is answered; only a winning press changes anything."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    language = lang(update)
    cb = callbacks.unpack(query.data)
    message = query.message
    if cb is None or message is None:
        await query.answer(t("popup_unknown", language), show_alert=True)
        return
    orders = services(context).orders
    if cb.kind == callbacks.DISMISS:
        result = await orders.dismiss(cb.value, user.id, message.message_id, chat_id=message.chat.id)
        if result.refused:
            await _refused(update, result, language)
            return
        await query.answer()
        await _edit(update, render.outcome(result, language))
        return

    async def show_sending(card: OrderCard) -> None:
        try:
            await query.answer(t("popup_sending", language))
        except TelegramError as exc:
            log.warning("could not answer the press", extra={"error": type(exc).__name__})
        await _edit(update, f"{render.card_summary(card, language)}\n⏳ {t('popup_sending', language)}")

    result = await orders.confirm(cb.value, user.id, message.message_id, show_sending, chat_id=message.chat.id)
    if result.refused:
        await _refused(update, result, language)
        return
    await _edit(update, render.outcome(result, language))


async def _refused(update: Update, result: ConfirmResult, language: str) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(t(render.POPUP_KEYS.get(result.outcome, "popup_unknown"), language), show_alert=True)
    if result.outcome in (Outcome.EXPIRED, Outcome.ACCOUNT_CHANGED) and result.card is not None:
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
