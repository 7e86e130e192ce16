"""/status: the market's session, the mode, the market-data feed, the version."""

from __future__ import annotations

from telegram import Update

from chatbot.service.feed_keys import FeedCapacity
from chatbot.telegram import render
from chatbot.telegram.context import Context, lang, reply, services
from chatbot.telegram.i18n import t


async def status(update: Update, context: Context) -> None:
    svc, language = services(context), lang(update)
    text = render.status(svc.market.status(), language)
    user = update.effective_user
    capacity = svc.operations.feed_capacity(user.id) if user is not None else None
    if capacity is not None:  # for the operator: the feed's slots (README "Feed capacity")
        text += feed_capacity(capacity, language)
    await reply(update, context, text)


def feed_capacity(c: FeedCapacity, language: str) -> str:
    every = "" if not c.polled else (f" ({c.poll_every}초마다)" if language == "ko" else f" (every {c.poll_every} s)")
    return t("feed_capacity", language, used=c.slots_used, total=c.slots_total,
             sessions=c.operator_sessions + c.user_sessions, operator=c.operator_sessions, users=c.user_sessions,
             polled=c.polled, every=every)
