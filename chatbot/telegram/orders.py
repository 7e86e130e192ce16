"""/buy, /sell, /orders, /cancel, /modify: each order, cancellation or revision becomes a card (:mod:`.cards`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Sequence

from telegram import ForceReply, InlineKeyboardMarkup, Message, Update

from chatbot.service.errors import UserError
from chatbot.service.inputs import normalise_typed, revise_example
from chatbot.service.us_views import Money
from chatbot.service.views import OpenOrdersView, OrderCard, OrderSide
from chatbot.telegram import callbacks, help, render, us_render
from chatbot.telegram.cards import send_card, show_card_in_place
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)


async def _order(update: Update, context: Context, side: OrderSide) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    us = services(context).us
    request = us.orders.request(context.args or []) if us is not None else None
    if us is not None and request is not None:  # a US stock: /buy AAPL 3 190.50, /sell TSLA 1 moc
        await send_card(update, context, us.orders.prepare_order(user.id, chat.id, side, request))
        return
    await send_card(update, context, services(context).orders.prepare_order(user.id, chat.id, side, context.args or []))


@user_errors
async def buy(update: Update, context: Context) -> None:
    """/buy <symbol> <qty> [<price>|market]: a card for a buy."""
    await _order(update, context, OrderSide.BUY)


@user_errors
async def sell(update: Update, context: Context) -> None:
    """/sell <symbol> <qty> [<price>|market]: a card for a sell."""
    await _order(update, context, OrderSide.SELL)


@user_errors
async def pick_order(update: Update, context: Context) -> None:
    """A candidate stock offered for a /buy or /sell whose stock was ambiguous: that order's card, as if
    typed with the stock's code (checked again like any typed order; nothing is sent before Confirm)."""
    query = update.callback_query
    user, chat = update.effective_user, update.effective_chat
    assert query is not None and user is not None and chat is not None
    cb = callbacks.unpack(query.data)
    args = callbacks.order_args(cb.value) if cb is not None else None
    if cb is None or args is None:
        await query.answer(t("popup_unknown", lang(update)), show_alert=True)
        return
    side = OrderSide.BUY if cb.kind == callbacks.PICK_BUY else OrderSide.SELL
    await show_card_in_place(update, context, services(context).orders.prepare_order(user.id, chat.id, side, args))


@user_errors
async def orders(update: Update, context: Context) -> None:
    """/orders: today's open orders, each with Cancel (취소) and Revise (정정) buttons."""
    assert update.effective_user is not None
    view = await services(context).account.open_orders(update.effective_user.id, lang(update))
    text, keyboard = await _with_us(context, update.effective_user.id, view, lang(update), for_cancel=False)
    await reply(update, context, text, keyboard)


async def _with_us(context: Context, user_id: int, view: OpenOrdersView, language: str, *, for_cancel: bool
                   ) -> tuple[str, InlineKeyboardMarkup | None]:
    """The domestic open orders, and the US ones beside them (each marked 🇺🇸)."""
    text, keyboard = render.open_orders(view, language, for_cancel=for_cancel)
    us = services(context).us
    if us is None or not await us.orders.trades_us(user_id):
        return text, keyboard
    try:
        us_orders = await us.orders.open_orders(user_id)
        reserved = await us.orders.reservations.pending(user_id)  # KIS sends them at the next open
    except UserError:  # KIS's US side did not answer: the domestic orders are still listed (and cancellable)
        unavailable = t("us_orders_unavailable", language)
        if not view.orders:
            return f"{text}\n{unavailable}", keyboard
        return render.order_list(view.mode, [*render.order_lines(view, language), unavailable], language,
                                 for_cancel=for_cancel), keyboard
    if not us_orders and not reserved:
        return text, keyboard
    lines = render.order_lines(view, language) + [us_render.order_line(o, language) for o in us_orders]
    lines += [us_render.reservation_line(r, language) for r in reserved]
    text = render.order_list(view.mode, lines, language, for_cancel=for_cancel)  # within Telegram's length
    rows = [list(row) for row in keyboard.inline_keyboard] if keyboard else []
    return text, InlineKeyboardMarkup(rows + us_render.order_buttons(us_orders, language)
                                      + us_render.reservation_buttons(reserved, language))


@user_errors
async def cancel(update: Update, context: Context) -> None:
    """/cancel: open orders as buttons; /cancel <order_no>: a card for cancelling that one."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    args = context.args or []
    if len(args) > 1:
        raise UserError("usage_cancel")
    if not args:
        view = await services(context).account.open_orders(user.id, lang(update))
        text, keyboard = await _with_us(context, user.id, view, lang(update), for_cancel=True)
        await reply(update, context, text, keyboard)
        return
    await send_card(update, context, _cancel_card(context, user.id, chat.id, args[0]))


def _cancel_card(context: Context, user_id: int, chat_id: int, order_no: str) -> Awaitable[OrderCard]:
    """A domestic order's cancel card, else a US order's (the US service looks domestic up first)."""
    us = services(context).us
    if us is not None:
        return us.orders.prepare_cancel_any(user_id, chat_id, order_no)
    return services(context).orders.prepare_cancel(user_id, chat_id, order_no)


@user_errors
async def pick_cancel(update: Update, context: Context) -> None:
    """An order button from /cancel: a card for cancelling it."""
    query = update.callback_query
    user, chat = update.effective_user, update.effective_chat
    assert query is not None and user is not None and chat is not None
    cb = callbacks.unpack(query.data)
    if cb is not None:  # a UserError is answered by @user_errors
        await send_card(update, context, _cancel_card(context, user.id, chat.id, cb.value))
    await query.answer()


@user_errors
async def modify(update: Update, context: Context) -> None:
    """/modify <order_no> <new price> [<new qty>]: a card for revising that order (정정)."""
    await _revise(update, context, context.args or [])


async def _revise(update: Update, context: Context, args: Sequence[str]) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    us = services(context).us
    if us is not None:  # a domestic order first, else a US one
        await send_card(update, context, us.orders.prepare_revise_any(user.id, chat.id, list(args)))
        return
    await send_card(update, context, services(context).orders.prepare_revise(user.id, chat.id, list(args)))


# The command a revise prompt shows (``/modify 0000001234 3560``); its first line names the order too.
_PROMPTED = re.compile(r"/modify (\S{1,40}) ")


def prompted_order(message: Message | None, bot_id: int) -> str | None:
    """The order number of the revise prompt ``message`` is (one the 정정 button brought), else None."""
    if message is None or message.from_user is None or message.from_user.id != bot_id or not message.text:
        return None
    found = _PROMPTED.search(message.text)
    if found is None or found.group(1) not in message.text.split("\n", 1)[0]:
        return None
    return found.group(1)


@user_errors
async def revise_reply(update: Update, context: Context) -> None:
    """Text sent in reply to a revise prompt: ``<new price> [<new qty>]``, read as ``/modify <order> …`` (a
    card, as the command brings; nothing is sent before Confirm). Any other text: the hint, as before."""
    message = update.effective_message
    order_no = prompted_order(message.reply_to_message, context.bot.id) if message is not None else None
    if message is None or order_no is None or not message.text:
        await help.plain_text(update, context)
        return
    await _revise(update, context, [order_no, *normalise_typed(message.text).split()])


@user_errors
async def pick_revise(update: Update, context: Context) -> None:
    """A Revise (정정) button from /orders or /cancel: the /modify command to send, prefilled with the order
    number (the new price is the user's to type). The order must be the presser's own."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    cb = callbacks.unpack(query.data)
    if cb is not None and services(context).us is not None:  # a US order's button: its own prompt
        us = services(context).us
        assert us is not None
        try:
            us_order = await us.orders.open_order(user.id, cb.value)
        except UserError:  # KIS's US side did not answer: a domestic order's button still works
            us_order = None
        if us_order is not None:
            language = lang(update)
            dollars = us_order.price or Money.usd(0)
            example = _typed_usd(revise_example(dollars, us_order.side)) if us_order.price else ""
            text = t("us_revise_prompt", language, order_no=us_order.order_no, name=us_order.name or us_order.symbol,
                     remaining=us_order.cancellable_quantity, price=str(dollars), example=example)
            await _prompt(update, context, text + "\n" + t("revise_reply_hint", language, example=example), example)
            await query.answer()
            return
    if cb is not None:  # a UserError is answered by @user_errors
        order = await services(context).orders.open_order(user.id, cb.value)
        language = lang(update)
        price = render.amount(order.price) if order.price else t("market", language)
        example = render.typed(revise_example(order.price, order.side)) if order.price else ""
        await _prompt(update, context, t("revise_prompt", language, order_no=order.order_no, name=order.name,
                                         remaining=order.cancellable_quantity, price=price, example=example),
                      example)
    await query.answer()


async def _prompt(update: Update, context: Context, text: str, example: str) -> None:
    """A revise prompt, which the user's app opens a reply to (ForceReply): the reply is the new price
    (:func:`revise_reply`)."""
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_message(chat.id, text, reply_markup=ForceReply(
        selective=True, input_field_placeholder=example or None))


def _typed_usd(price: Money) -> str:
    """A US price as typed, to its tick: ``190.50``; ``0.4012`` under a dollar (two places would make the
    prompt's example a different price)."""
    return f"{price.amount:.2f}" if price.amount >= 1 else f"{price.amount:.4f}"
