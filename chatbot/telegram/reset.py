"""/reset: a card for starting the paper account over (simulator mode)."""

from __future__ import annotations

from telegram import Update

from chatbot.telegram.cards import send_card
from chatbot.telegram.context import Context, services, user_errors


@user_errors
async def reset(update: Update, context: Context) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    await send_card(update, context, services(context).account.prepare_reset(user.id, chat.id))
