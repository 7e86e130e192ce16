"""/login (app key → secret → account, each message deleted as soon as it is read), /logout, /me.
Nothing half-entered is ever stored: the pieces live in this conversation's memory only
(the bot uses no persistence) and are dropped on /cancel, timeout or completion.

A message shaped like a KIS app key or secret that the flow is not waiting for — sent before /login,
as a command argument, in a group, or after a restart or timeout lost the flow — is deleted at once
by :func:`secret_guard`, which runs before everything else and says why (its text is never logged)."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    ConversationHandler,
    MessageHandler,
    filters,
)

from chatbot.service.errors import UserError
from chatbot.service.registration import (
    check_app_key,
    check_app_secret,
    parse_account,
    parse_hts_id,
    secret_kind,
)
from chatbot.service.views import mask_account
from chatbot.telegram import orders, render
from chatbot.telegram.context import Command, Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)
APP_KEY, APP_SECRET, ACCOUNT, HTS_ID = range(4)
LOGIN_TIMEOUT_SECONDS = 300
_DRAFT = "login_draft"


async def _consume(update: Update, context: Context) -> str | None:
    """The text of the user's message, which is deleted at once (it may carry a secret)."""
    message = update.message
    if message is None:
        return None
    text = message.text
    try:
        await message.delete()
    except TelegramError as exc:
        log.warning("could not delete a message carrying a secret", extra={"error": type(exc).__name__})
        await reply(update, context, t("delete_failed", lang(update)))
    return text


def _draft(context: Context) -> dict[str, str]:
    assert context.user_data is not None
    return context.user_data.setdefault(_DRAFT, {})  # type: ignore[no-any-return]


def _drop_draft(context: Context) -> None:
    if context.user_data is not None:
        context.user_data.pop(_DRAFT, None)


async def start(update: Update, context: Context) -> int:
    _drop_draft(context)
    await reply(update, context, t("login_intro", lang(update), badge=render.badge(services(context).mode,
                                                                                      lang(update))))
    return APP_KEY


async def got_app_key(update: Update, context: Context) -> int:
    text = await _consume(update, context)
    try:
        _draft(context)["app_key"] = check_app_key(text or "")
    except UserError as err:
        await reply(update, context, render.error(err, lang(update))[0])
        return APP_KEY
    await reply(update, context, t("login_secret", lang(update)))
    return APP_SECRET


async def got_app_secret(update: Update, context: Context) -> int:
    text = await _consume(update, context)
    try:
        _draft(context)["app_secret"] = check_app_secret(text or "")
    except UserError as err:
        await reply(update, context, render.error(err, lang(update))[0])
        return APP_SECRET
    await reply(update, context, t("login_account", lang(update)))
    return ACCOUNT


async def got_account(update: Update, context: Context) -> int:
    text = await _consume(update, context)
    try:
        _draft(context)["account"] = str(parse_account(text or ""))
    except UserError as err:
        await reply(update, context, render.error(err, lang(update))[0])
        return ACCOUNT
    await reply(update, context, t("login_hts_id", lang(update)))
    return HTS_ID


async def got_hts_id(update: Update, context: Context) -> int:
    text = await _consume(update, context)
    language = lang(update)
    try:
        hts_id = parse_hts_id(text or "")
    except UserError as err:
        await reply(update, context, render.error(err, language)[0])
        return HTS_ID
    draft = _draft(context)
    account = parse_account(draft.get("account", ""))
    _drop_draft(context)
    user = update.effective_user
    assert user is not None
    await reply(update, context, t("login_checking", language))
    try:
        me = await services(context).registration.register(user.id, draft.get("app_key", ""),
                                                           draft.get("app_secret", ""), account, hts_id)
    except UserError as err:
        await reply(update, context, render.error(err, language)[0])
        return ConversationHandler.END
    finally:
        draft.clear()
    await reply(update, context, t("login_done", language, key=me.key_hint or "",
                                       account=mask_account(me.account or ""))
                + ("" if me.fill_pushes else "\n" + t("fills_need_hts_id", language)))
    return ConversationHandler.END


async def not_text(update: Update, context: Context) -> None:
    await _consume(update, context)
    await reply(update, context, t("login_text_only", lang(update)))


async def cancel(update: Update, context: Context) -> int:
    """/cancel (or /login again) ends the registration. ``/cancel <order_no>`` also meant that order:
    its cancel card follows, as it would have outside the flow (the reply said only that the
    registration stopped, and the order stayed open untold)."""
    _drop_draft(context)
    await reply(update, context, t("login_cancelled", lang(update)))
    message = update.effective_message
    if context.args and message is not None and (message.text or "").startswith("/cancel"):
        await orders.cancel(update, context)
    return ConversationHandler.END


async def timeout(update: Update, context: Context) -> None:
    _drop_draft(context)
    chat = update.effective_chat
    if chat is not None:
        await context.bot.send_message(chat.id, t("login_timeout", lang(update)))


def conversation() -> ConversationHandler:  # type: ignore[type-arg]
    text = filters.TEXT & ~filters.COMMAND
    other = ~filters.TEXT & ~filters.COMMAND
    return ConversationHandler(
        entry_points=[Command("login", start)],
        states={
            APP_KEY: [MessageHandler(text, got_app_key), MessageHandler(other, not_text)],
            APP_SECRET: [MessageHandler(text, got_app_secret), MessageHandler(other, not_text)],
            ACCOUNT: [MessageHandler(text, got_account), MessageHandler(other, not_text)],
            HTS_ID: [MessageHandler(text, got_hts_id), MessageHandler(other, not_text)],
            ConversationHandler.TIMEOUT: [MessageHandler(filters.ALL, timeout)],
        },
        fallbacks=[Command(["cancel", "login"], cancel)],
        conversation_timeout=LOGIN_TIMEOUT_SECONDS,
        name="login", persistent=False, per_chat=True, per_user=True,
    )


class _SecretShaped(filters.MessageFilter):
    """Messages (new or edited) whose text or caption carries something shaped like a KIS key or secret."""

    def filter(self, message: Message) -> bool:
        return secret_kind(message.text or message.caption or "") is not None


def secret_guard(login_flow: ConversationHandler) -> MessageHandler:  # type: ignore[type-arg]
    """The handler (for a group before the access gate) that deletes stray secrets; ``login_flow`` is
    the registered /login conversation, whose waiting steps read (and delete) their own messages."""

    async def guard(update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        text = message.text or message.caption or ""
        if update.message is not None and message.text and not text.startswith("/"):
            routed = login_flow.check_update(update)
            if routed and routed[0] in (APP_KEY, APP_SECRET, ACCOUNT, HTS_ID) \
                    and routed[2] not in login_flow.fallbacks:
                return  # the step waiting for it reads it and deletes it
        kind = secret_kind(text) or "app_key"
        try:
            deleted = bool(await message.delete())
        except TelegramError as exc:
            deleted = False
            log.warning("could not delete a message shaped like a KIS secret", extra={"error": type(exc).__name__})
        user = update.effective_user
        log.info("deleted a message shaped like a KIS secret", extra={
            "user_id": user.id if user else None, "kind": kind, "deleted": deleted})
        language = lang(update)
        notice = t("stray_secret", language, what=t(f"secret_{kind}", language))
        if not deleted:
            notice += "\n" + t("stray_secret_undeleted", language)
        chat = update.effective_chat
        if chat is not None:
            try:
                await context.bot.send_message(chat.id, notice)
            except TelegramError as exc:
                log.warning("could not explain a deleted secret", extra={"error": type(exc).__name__})
        raise ApplicationHandlerStop

    return MessageHandler(_SecretShaped(), guard)


@user_errors
async def logout(update: Update, context: Context) -> None:
    assert update.effective_user is not None
    done = await services(context).registration.logout(update.effective_user.id)
    key = "logout_none" if done is None else "logout_token_kept" if done.token_kept else "logout_done"
    await reply(update, context, t(key, lang(update)))


@user_errors
async def me(update: Update, context: Context) -> None:
    assert update.effective_user is not None
    view = await services(context).registration.me(update.effective_user.id)
    language = lang(update)
    badge = render.badge(view.mode, language)
    if view.key_hint:
        text = t("me_registered", language, badge=badge, key=view.key_hint,
                 account=mask_account(view.account or ""))
        text += "" if view.fill_pushes else "\n" + t("fills_need_hts_id", language)
    else:
        text = t("me_paper" if view.paper_account else "me_none", language, badge=badge)
    await reply(update, context, text)

