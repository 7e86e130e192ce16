"""/start and /help: what the bot does, the trading mode, every command with an example."""

from __future__ import annotations

from telegram import Update

from chatbot.telegram import render
from chatbot.telegram.context import Context, lang, reply, services
from chatbot.telegram.i18n import t


async def start(update: Update, context: Context) -> None:
    """Welcome text: mode badge and the command list."""
    language = lang(update)
    badge = render.badge(services(context).mode, language)
    commands = t("commands", language) + "\n" + t("commands_conditional", language)
    if services(context).us is not None:  # US stocks: the same commands with a ticker
        commands += "\n\n" + t("us_commands", language)
        commands += "\n" + t("us_commands_conditional", language)  # /stop AAPL 3 180 …
    await reply(update, context, t("welcome", language, badge=badge, commands=commands))


async def unknown_command(update: Update, context: Context) -> None:
    await reply(update, context, t("unknown_command", lang(update)))


async def plain_text(update: Update, context: Context) -> None:
    await reply(update, context, t("plain_text_hint", lang(update)))
