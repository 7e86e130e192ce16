"""Who may talk to the bot, and where: the global gate (group -1) and leaving strangers' groups.

The gate runs before every handler: it notes the user (without writing the users table on every
update: see :func:`_record_visit`); users outside ``telegram.allowed_users`` (when set) get one
polite refusal a minute and nothing else; in groups the bot answers commands and buttons with
"private chats only" and does nothing more. Button presses are checked again by the service
(owner of the card).
"""

from __future__ import annotations

import logging
import time

from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.ext import ApplicationHandlerStop

from chatbot.telegram.context import Context, lang, services
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)
REFUSAL_INTERVAL = 60.0
LAST_SEEN_INTERVAL = 600.0  # seconds between writes of a user's last-seen time
MAX_SEEN = 50_000  # users remembered; past that, the stale ones are forgotten
# (chat, user) pairs whose last refusal is remembered (one refusal a REFUSAL_INTERVAL each); past that,
# those older than the interval are forgotten, and if a flood of strangers left too few of those, the
# older half (each stranger once was a pair kept for good: a public bot's token meets them for weeks)
MAX_REFUSED = 10_000
SEEN_KEY = "last_seen_written"


async def gate(update: Update, context: Context) -> None:
    if update.my_chat_member is not None:
        return  # membership changes go to on_membership
    user, chat = update.effective_user, update.effective_chat
    if user is None or user.is_bot:
        raise ApplicationHandlerStop
    metrics = context.application.bot_data.get("metrics")
    if metrics is not None and update.message is not None and update.message.text:
        metrics.command(update.message.text)
    svc = services(context)
    if svc.allowed_users and user.id not in svc.allowed_users:
        log.info("update from a user outside allowed_users refused", extra={"user_id": user.id})
        await _refuse(update, context, "not_allowed")
        raise ApplicationHandlerStop
    if chat is not None and chat.type != ChatType.PRIVATE:
        message = update.effective_message
        if update.callback_query is not None or (message is not None and (message.text or "").startswith("/")):
            await _refuse(update, context, "private_only")
        raise ApplicationHandlerStop
    await _record_visit(context, user.id, user.language_code)


async def _record_visit(context: Context, user_id: int, language_code: str | None) -> None:
    """Note the user in the users table: a new user or a language change at once, the last-seen
    time at most once per :data:`LAST_SEEN_INTERVAL`, and at once when the user may be back after
    blocking the bot (their alerts resume): when a send to them was refused since, or Telegram said
    they blocked or unblocked the bot. Other updates cost no database access."""
    seen = _seen(context)
    now = time.monotonic()
    last = seen.get(user_id)
    refused_by: set[int] = getattr(context.bot.rate_limiter, "refused_by", set())
    if (last is not None and now - last[0] < LAST_SEEN_INTERVAL and last[1] == language_code
            and user_id not in refused_by):
        return
    if len(seen) >= MAX_SEEN:
        for stale in [uid for uid, (at, _) in seen.items() if now - at >= LAST_SEEN_INTERVAL]:
            del seen[stale]
    svc = services(context)
    returned = await svc.users.touch(user_id, language_code)
    seen[user_id] = (now, language_code)  # only once written: an update handled again writes again
    refused_by.discard(user_id)
    if returned:  # back after blocking the bot
        await svc.alerts.user_returned(user_id)


def _seen(context: Context) -> dict[int, tuple[float, str | None]]:
    seen: dict[int, tuple[float, str | None]] = context.application.bot_data.setdefault(SEEN_KEY, {})
    return seen


async def _refuse(update: Update, context: Context, key: str) -> None:
    text = t(key, lang(update))
    if update.callback_query is not None:  # every button press gets its answer
        await update.callback_query.answer(text, show_alert=True)
        return
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    last: dict[tuple[int, int], float] = context.application.bot_data.setdefault("refused_at", {})
    now = time.monotonic()
    if now - last.get((chat.id, user.id), -REFUSAL_INTERVAL) >= REFUSAL_INTERVAL:
        if len(last) >= MAX_REFUSED:
            _forget_refusals(last, now)
        last[(chat.id, user.id)] = now
        await context.bot.send_message(chat.id, text)


def _forget_refusals(last: dict[tuple[int, int], float], now: float) -> None:
    for stale in [pair for pair, at in last.items() if now - at >= REFUSAL_INTERVAL]:
        del last[stale]
    if len(last) >= MAX_REFUSED // 2:  # all recent: the older half (told again a little sooner, at worst)
        for pair, _ in sorted(last.items(), key=lambda item: item[1])[:len(last) - MAX_REFUSED // 2]:
            del last[pair]


async def on_membership(update: Update, context: Context) -> None:
    """Leave any group the bot is added to, unless an allowed user added it (it stays quiet there)."""
    change = update.my_chat_member
    if change is None:
        return
    if change.chat.type == ChatType.PRIVATE:  # the user blocked or unblocked the bot: note them anew
        _seen(context).pop(change.chat.id, None)
        return
    joined = change.new_chat_member.status in (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR)
    if not joined:
        return
    svc = services(context)
    adder = change.from_user
    if svc.allowed_users and adder is not None and adder.id in svc.allowed_users:
        return
    log.info("added to a group by a stranger; leaving", extra={"chat_id": change.chat.id})
    await context.bot.send_message(change.chat.id, t("private_only", lang(update)))
    await context.bot.leave_chat(change.chat.id)
