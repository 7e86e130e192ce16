"""Build the python-telegram-bot Application over the services, and run it."""

from __future__ import annotations

import asyncio
import logging
from zoneinfo import ZoneInfo

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest

from chatbot.config import TelegramSettings
from chatbot.service.errors import is_transient_lock
from chatbot.service.services import Services
from chatbot.telegram import (
    access,
    alerts,
    balance,
    callbacks,
    cards,
    chart,
    help,
    login,
    orders,
    price,
    report,
    reset,
    status,
    stops,
)
from chatbot.telegram.concurrency import PerChatUpdateProcessor
from chatbot.telegram.context import Command, Context, lang
from chatbot.telegram.i18n import COMMAND_MENU, t
from chatbot.telegram.pacing import MAX_IN_FLIGHT, URGENT, ChatPacedRateLimiter

log = logging.getLogger(__name__)
LOCK_RETRY_PAUSES = (0.5, 2.0, 5.0)  # seconds before each fresh attempt at an update that met a lock
LOCK_RETRIES_KEY = "lock_retries"
QUEUED_NOTICE_AFTER = 3.0  # seconds a user waits without a word before being told their reply is queued


class _StopRaceIsNoCrash(logging.Filter):
    """PTB logs CRITICAL when a long poll brings updates just as polling stops (a user wrote while
    the bot was stopping). Nothing is lost: the offset was not confirmed, so Telegram hands them over
    again at the next start. A warning, then, not an alarm."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING and record.getMessage().startswith("Updater stopped unexpectedly"):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_the_stop_race() -> None:
    updater_log = logging.getLogger("telegram.ext.Updater")
    if not any(isinstance(f, _StopRaceIsNoCrash) for f in updater_log.filters):
        updater_log.addFilter(_StopRaceIsNoCrash())


def build_application(settings: TelegramSettings, services: Services, *, request: BaseRequest | None = None,
                      per_chat_interval: float = 1.0) -> Application:  # type: ignore[type-arg]
    _quiet_the_stop_race()
    limiter = ChatPacedRateLimiter(per_chat_interval, max_retries=2)
    processor = PerChatUpdateProcessor(patience=QUEUED_NOTICE_AFTER, last_delivery=limiter.last_delivery)
    builder = (ApplicationBuilder()
               .token(settings.token or "0:console")
               .base_url(settings.base_url)
               .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=ZoneInfo("Asia/Seoul")))
               .rate_limiter(limiter)
               .concurrent_updates(processor)
               .post_init(on_startup))
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    else:
        # Two connections for getUpdates: on stop, PTB confirms the last offset with one more call
        # while the cancelled long poll may still hold the first; with one, a busy machine made that
        # call time out (an error logged, and the updates handed over again at the next start).
        builder = builder.get_updates_connection_pool_size(2)
        # No more connections than requests the limiter lets on the wire at once (pacing: a larger pool
        # only grows to a burst's size and makes every request after it pay for each connection).
        builder = builder.connection_pool_size(MAX_IN_FLIGHT)
    app = builder.build()
    app.bot_data["services"] = services

    async def tell_queued(update: Update) -> None:
        """One short word to a user whose reply is queued (ahead of the queue: it is the point)."""
        chat = update.effective_chat
        if chat is not None:
            # ChatPacedRateLimiter also takes the URGENT marker; PTB types rate_limit_args as AIORateLimiter's int.
            await app.bot.send_message(chat.id, t("queued", lang(update)),
                                       rate_limit_args=URGENT)  # type: ignore[arg-type]

    processor.on_waiting = tell_queued
    register(app)
    return app


def register(app: Application) -> None:  # type: ignore[type-arg]
    login_flow = login.conversation()
    app.add_handler(login.secret_guard(login_flow), group=-2)  # before the gate: strangers' and groups' too
    app.add_handler(TypeHandler(Update, access.gate), group=-1)
    app.add_handler(ChatMemberHandler(access.on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(login_flow)  # first: while it runs, /cancel ends the registration
    app.add_handler(Command("logout", login.logout))
    app.add_handler(Command("me", login.me))
    app.add_handler(Command("reset", reset.reset))
    app.add_handler(Command(["start", "help"], help.start))
    app.add_handler(Command("price", price.price))
    app.add_handler(Command("buy", orders.buy))
    app.add_handler(Command("sell", orders.sell))
    app.add_handler(Command("orders", orders.orders))
    app.add_handler(Command("cancel", orders.cancel))
    app.add_handler(Command("modify", orders.modify))
    app.add_handler(Command("balance", balance.balance))
    app.add_handler(Command("alert", alerts.alert))
    app.add_handler(Command("alerts", alerts.alerts))
    app.add_handler(Command("chart", chart.chart))
    app.add_handler(Command("status", status.status))
    app.add_handler(Command("report", report.report))
    app.add_handler(Command("history", report.history))
    app.add_handler(CallbackQueryHandler(cards.card_button, pattern=f"^({callbacks.CONFIRM}|{callbacks.DISMISS}):"))
    app.add_handler(CallbackQueryHandler(price.pick, pattern=f"^{callbacks.PICK_QUOTE}:"))
    app.add_handler(CallbackQueryHandler(orders.pick_order, pattern=f"^({callbacks.PICK_BUY}|{callbacks.PICK_SELL}):"))
    app.add_handler(CallbackQueryHandler(orders.pick_cancel, pattern=f"^{callbacks.PICK_CANCEL}:"))
    app.add_handler(CallbackQueryHandler(orders.pick_revise, pattern=f"^{callbacks.PICK_REVISE}:"))
    app.add_handler(CallbackQueryHandler(alerts.delete_button, pattern=f"^{callbacks.DELETE_ALERT}:"))
    app.add_handler(Command("stop", stops.stop))
    app.add_handler(Command("tp", stops.take_profit))
    app.add_handler(Command("trail", stops.trail))
    app.add_handler(Command("bracket", stops.bracket))
    app.add_handler(Command("stops", stops.stops))
    app.add_handler(CallbackQueryHandler(stops.card_button,
                                         pattern=f"^({callbacks.COND_CONFIRM}|{callbacks.COND_DISMISS}):"))
    app.add_handler(CallbackQueryHandler(stops.cancel_button, pattern=f"^{callbacks.COND_CANCEL}:"))
    picks = callbacks.COMMAND_PICKS
    app.add_handler(CallbackQueryHandler(alerts.pick, pattern=f"^{picks['alert']}:"))
    app.add_handler(CallbackQueryHandler(chart.pick, pattern=f"^{picks['chart']}:"))
    app.add_handler(CallbackQueryHandler(
        stops.pick, pattern=f"^({'|'.join(picks[kind] for kind in ('stop', 'tp', 'trail', 'bracket'))}):"))
    app.add_handler(CallbackQueryHandler(unknown_button))
    app.add_handler(MessageHandler(filters.COMMAND, help.unknown_command))
    app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, orders.revise_reply))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, help.plain_text))
    app.add_error_handler(on_error)


async def unknown_button(update: Update, context: Context) -> None:
    """Forged or stale callback data: answer, change nothing."""
    if update.callback_query is not None:
        await update.callback_query.answer(t("popup_unknown", lang(update)), show_alert=True)


async def on_startup(app: Application) -> None:  # type: ignore[type-arg]
    """Register the command menu (Korean by default, English for English clients)."""
    for language, commands in COMMAND_MENU.items():
        menu = [BotCommand(name, description) for name, description in commands]
        await app.bot.set_my_commands(menu, language_code=None if language == "ko" else language)


async def on_error(update: object, context: Context) -> None:
    """Log without dumping the update (it may carry secrets); tell the user nothing changed.

    A database lock that escaped (SQLite held by another process past the writers' patience) is
    not a failure to show: the update is handled again from the start, after a pause, in its
    chat's turn (the transaction that met the lock was rolled back, and every state change is
    conditional: a card is claimed once, an alert fires once). Only if the lock outlasts every
    retry is the user asked to send it again."""
    error = context.error
    if isinstance(error, Forbidden):
        log.info("user blocked the bot", extra={"error": str(error)})
        return
    if error is not None and is_transient_lock(error) and isinstance(update, Update):
        await _retry_after_lock(update, context)
    log.error("handler failed", exc_info=error, extra={
        "update_id": update.update_id if isinstance(update, Update) else None})
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(t("internal_error", lang(update)), show_alert=True)
        else:
            await context.bot.send_message(update.effective_chat.id, t("internal_error", lang(update)))
    except TelegramError:
        pass


async def _retry_after_lock(update: Update, context: Context) -> None:
    retries: dict[int, int] = context.application.bot_data.setdefault(LOCK_RETRIES_KEY, {})
    attempt = retries.get(update.update_id, 0)
    if attempt < len(LOCK_RETRY_PAUSES):
        log.warning("database locked; handling the update again",
                    extra={"update_id": update.update_id, "attempt": attempt + 1})
        retries[update.update_id] = attempt + 1
        try:
            await asyncio.sleep(LOCK_RETRY_PAUSES[attempt])
            await context.application.process_update(update)
        finally:
            if retries.get(update.update_id) == attempt + 1:
                retries.pop(update.update_id, None)
        raise ApplicationHandlerStop  # this pass is over: the retry did the rest
    log.error("database locked; gave up on the update", extra={"update_id": update.update_id})
    if update.effective_chat is not None:
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(t("busy_retry", lang(update)), show_alert=True)
            else:
                await context.bot.send_message(update.effective_chat.id, t("busy_retry", lang(update)))
        except TelegramError:
            pass
    raise ApplicationHandlerStop


async def start(app: Application, *, poll_timeout: int = 10, poll_interval: float = 0.0) -> None:  # type: ignore[type-arg]
    """initialize → post_init → start → polling (what run_polling does, minus owning the loop)."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=poll_interval, timeout=poll_timeout,
                                    allowed_updates=Update.ALL_TYPES)


async def start_standby(app: Application) -> None:  # type: ignore[type-arg]
    """initialize → post_init → start, without polling: a replica that may take the long poll over."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()


async def start_polling(app: Application, *, poll_timeout: int = 10, poll_interval: float = 0.0) -> None:  # type: ignore[type-arg]
    """This replica took the long poll over (the one that polled is gone)."""
    assert app.updater is not None
    if not app.updater.running:
        await app.updater.start_polling(poll_interval=poll_interval, timeout=poll_timeout,
                                        allowed_updates=Update.ALL_TYPES)


async def stop_polling(app: Application) -> None:  # type: ignore[type-arg]
    if app.updater is not None and app.updater.running:
        await app.updater.stop()


async def start_webhook(app: Application, url: str, secret: str) -> None:  # type: ignore[type-arg]
    """Start without polling and ask Telegram to post updates to ``url`` with ``secret``."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()
    await app.bot.set_webhook(url=url, secret_token=secret, allowed_updates=Update.ALL_TYPES)


async def stop(app: Application) -> None:  # type: ignore[type-arg]
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
