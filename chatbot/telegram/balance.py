"""/balance: holdings with P/L and the account totals, every KIS page included."""

from __future__ import annotations

from telegram import Update

from chatbot.telegram import render
from chatbot.telegram.context import Context, lang, reply, services, user_errors


@user_errors
async def balance(update: Update, context: Context) -> None:
    """Holdings (qty, average, current, P/L) and totals (cash, evaluation, P/L)."""
    assert update.effective_user is not None
    view = await services(context).account.balance(update.effective_user.id)
    await reply(update, context, render.balance(view, view.account, lang(update)))
