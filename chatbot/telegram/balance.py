"""/balance: holdings with P/L and the account totals, every KIS page included."""

from __future__ import annotations

from telegram import Update

from chatbot.telegram import render, us_render
from chatbot.telegram.context import Context, lang, reply, services, user_errors


@user_errors
async def balance(update: Update, context: Context) -> None:
    """Holdings (qty, average, current, P/L) and totals (cash, evaluation, P/L)."""
    assert update.effective_user is not None
    view = await services(context).account.balance(update.effective_user.id, lang(update))
    text = render.balance(view, view.account, lang(update))
    us = services(context).us
    asked = [a.lower() for a in context.args or []] in (["us"], ["미국"])  # /balance us: ask KIS in any case
    if us is not None:  # dollars, both totals
        us_view = await us.account.in_balance(update.effective_user.id, view.balance.total_value, asked)
        if us_view is not None:
            text += "\n" + us_render.balance(us_view, lang(update))
    for part in render.split_message(text):  # forty holdings and a US part exceed one message
        await reply(update, context, part)
