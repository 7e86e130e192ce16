"""What every handler needs: the services, the user's language, replying, and turning a
:class:`UserError` into a clear message that changed nothing."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from chatbot.service.alerts import AlertService
from chatbot.service.errors import UserError
from chatbot.service.registration import Registration
from chatbot.service.trading import TradingService
from chatbot.service.users import Users, language_of
from chatbot.service.views import Mode
from chatbot.telegram import render

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class BotServices:
    trading: TradingService
    registration: Registration
    users: Users
    alerts: AlertService
    mode: Mode
    allowed_users: frozenset[int]


def services(context: Context) -> BotServices:
    return context.application.bot_data["services"]  # type: ignore[no-any-return]


def lang(update: Update) -> str:
    user = update.effective_user
    return language_of(user.language_code if user else None)


async def reply(update: Update, context: Context, text: str, keyboard: InlineKeyboardMarkup | None = None) -> Any:
    chat = update.effective_chat
    assert chat is not None
    return await context.bot.send_message(chat.id, text, reply_markup=keyboard)


def user_errors(handler: Handler) -> Handler:
    """Reply to a :class:`UserError` with its message (and candidate buttons); answer any callback.

    Handlers wrapped by this answer their callback query only after the work that may raise, so a
    query is never answered twice."""

    @functools.wraps(handler)
    async def wrapper(update: Update, context: Context) -> Any:
        try:
            return await handler(update, context)
        except UserError as err:
            if update.callback_query is not None:
                await update.callback_query.answer()
            text, keyboard = render.error(err, lang(update))
            await reply(update, context, text, keyboard)
            return None

    return wrapper
