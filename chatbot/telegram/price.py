"""/price <symbol>: name, code, price, change, volume, day range; candidate buttons when ambiguous."""

from __future__ import annotations

from telegram import Update
from telegram.error import BadRequest

from chatbot.service.errors import UserError
from chatbot.telegram import callbacks, render, us_render
from chatbot.telegram.context import Context, lang, reply, services, user_errors


@user_errors
async def price(update: Update, context: Context) -> None:
    """Quote a stock given by code or name."""
    args = context.args or []
    if not args:
        raise UserError("usage_price")
    user = update.effective_user
    assert user is not None
    text = " ".join(args)
    us = services(context).us
    symbol = us.market.lookup(text) if us is not None else None
    if us is not None and symbol is not None:  # a US stock (AAPL, 애플, QQQ): its own view
        await reply(update, context, us_render.quote(await us.market.quote(user.id, symbol), lang(update)))
        return
    view = await services(context).market.quote(user.id, text)
    await reply(update, context, render.quote(view, lang(update)))


@user_errors
async def pick(update: Update, context: Context) -> None:
    """A candidate button: quote that stock in place of the candidate list."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    cb = callbacks.unpack(query.data)
    if cb is None:
        await query.answer()
        return
    view = await services(context).market.quote(update.effective_user.id, cb.value)  # errors: @user_errors
    await query.answer()
    try:
        await query.edit_message_text(render.quote(view, lang(update)))
    except BadRequest as exc:  # a second press on an unchanged quote: the message already shows it
        if "not modified" not in exc.message.lower():
            raise
