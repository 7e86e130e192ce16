"""/buy, /sell, /orders, /cancel, /modify: each order, cancellation or revision becomes a card (:mod:`.cards`)."""

from __future__ import annotations

import logging

from telegram import Update

from chatbot.service.errors import UserError
from chatbot.service.views import OrderSide
from chatbot.telegram import callbacks, render
from chatbot.telegram.cards import send_card
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)


async def _order(update: Update, context: Context, side: OrderSide) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
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
async def orders(update: Update, context: Context) -> None:
    """/orders: today's open orders, each with Cancel (취소) and Revise (정정) buttons."""
    assert update.effective_user is not None
    view = await services(context).account.open_orders(update.effective_user.id)
    text, keyboard = render.open_orders(view, lang(update))
    await reply(update, context, text, keyboard)


@user_errors
async def cancel(update: Update, context: Context) -> None:
    """/cancel: open orders as buttons; /cancel <order_no>: a card for cancelling that one."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    args = context.args or []
    if len(args) > 1:
        raise UserError("usage_cancel")
    if not args:
        view = await services(context).account.open_orders(user.id)
        text, keyboard = render.open_orders(view, lang(update), for_cancel=True)
        await reply(update, context, text, keyboard)
        return
    await send_card(update, context, services(context).orders.prepare_cancel(user.id, chat.id, args[0]))


@user_errors
async def pick_cancel(update: Update, context: Context) -> None:
    """An order button from /cancel: a card for cancelling it."""
    query = update.callback_query
    user, chat = update.effective_user, update.effective_chat
    assert query is not None and user is not None and chat is not None
    cb = callbacks.unpack(query.data)
    if cb is not None:  # a UserError is answered by @user_errors
        await send_card(update, context, services(context).orders.prepare_cancel(user.id, chat.id, cb.value))
    await query.answer()


@user_errors
async def modify(update: Update, context: Context) -> None:
    """/modify <order_no> <new price> [<new qty>]: a card for revising that order (정정)."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    await send_card(update, context, services(context).orders.prepare_revise(user.id, chat.id, context.args or []))


@user_errors
async def pick_revise(update: Update, context: Context) -> None:
    """A Revise (정정) button from /orders or /cancel: the /modify command to send, prefilled with the order
    number (the new price is the user's to type). The order must be the presser's own."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    cb = callbacks.unpack(query.data)
    if cb is not None:  # a UserError is answered by @user_errors
        order = await services(context).orders.open_order(user.id, cb.value)
        language = lang(update)
        price = render.amount(order.price) if order.price else t("market", language)
        await reply(update, context, t("revise_prompt", language, order_no=order.order_no, name=order.name,
                                       remaining=order.cancellable_quantity, price=price,
                                       example=render.typed(order.price) if order.price else ""))
    await query.answer()
