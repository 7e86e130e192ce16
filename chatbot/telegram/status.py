"""/status: the market's session, the mode, the market-data feed, the version."""

from __future__ import annotations

from telegram import Update

from chatbot.telegram import render
from chatbot.telegram.context import Context, lang, reply, services


async def status(update: Update, context: Context) -> None:
    await reply(update, context, render.status(services(context).market.status(), lang(update)))
