"""What every handler needs: the services, the user's language, replying, and turning a
:class:`UserError` into a clear message that changed nothing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CommandHandler, ContextTypes

from chatbot.service.errors import UserError
from chatbot.service.inputs import normalise_typed
from chatbot.service.services import Services
from chatbot.service.users import language_of
from chatbot.telegram import render

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Coroutine[Any, Any, Any]]  # what PTB takes


class Command(CommandHandler):  # type: ignore[type-arg]
    """A command whose words reach the handler as the service reads them: full-width digits and signs
    (``３５５５``, ``５％``, as Korean input methods give them) in their ASCII forms (:func:`normalise_typed`)."""

    def collect_additional_context(self, context: Context, update: Update,
                                   application: Application,  # type: ignore[type-arg]
                                   check_result: Any) -> None:
        super().collect_additional_context(context, update, application, check_result)
        if context.args:
            context.args = [normalise_typed(arg) for arg in context.args]


def services(context: Context) -> Services:
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
