"""/status: the market's session, the mode, the market-data feed, the version."""

from __future__ import annotations

from telegram import Update

from chatbot.telegram import render, us_render
from chatbot.telegram.context import Context, lang, reply, services


async def status(update: Update, context: Context) -> None:
    text = render.status(services(context).market.status(), lang(update))
    us = services(context).us
    if us is not None:  # which US session is on now
        text += "\n" + us_render.status(us.market.status(), lang(update))
    await reply(update, context, text)
