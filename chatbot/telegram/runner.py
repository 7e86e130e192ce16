"""Serve the bot until told to stop: the Application over the runtime, polling or webhook, the
HTTP endpoint (health, metrics, webhook), the push outbox; and a clean stop."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from telegram import Update

from chatbot import __version__
from chatbot.http_server import HttpServer, MalformedUpdate
from chatbot.metrics import Metrics, runtime_families
from chatbot.runtime import Runtime
from chatbot.telegram import app as tg
from chatbot.telegram.context import BotServices
from chatbot.telegram.notifier import TelegramNotifier

log = logging.getLogger(__name__)


async def serve(runtime: Runtime, stop: asyncio.Event, *, ready: asyncio.Event | None = None) -> None:
    settings = runtime.settings
    services = BotServices(runtime.trading, runtime.registration, runtime.users, runtime.alerts, runtime.mode,
                           frozenset(settings.telegram.allowed_users))
    application = tg.build_application(settings.telegram, services)
    metrics = Metrics()
    metrics.add_snapshot(lambda: runtime_families(runtime))
    runtime.accounts.latency_observer = metrics.observe_kis
    application.bot_data["metrics"] = metrics

    def health() -> dict[str, Any]:
        engine = runtime.engine
        return {"ok": True, "mode": runtime.mode.value, "version": __version__,
                "feed_connected": engine.feed.connected.is_set() if engine else None}

    webhook = settings.telegram.webhook_url
    http: HttpServer | None = None
    if settings.http.port or webhook:
        http = HttpServer(metrics, health)
        if webhook:
            secret = settings.telegram.webhook_secret or secrets.token_urlsafe(32)

            async def deliver(data: dict[str, Any]) -> None:
                try:
                    update = Update.de_json(data, application.bot)
                except (TypeError, ValueError, KeyError, AttributeError) as exc:  # malformed
                    raise MalformedUpdate(f"{type(exc).__name__}") from None
                await application.update_queue.put(update)

            http.add_webhook(settings.telegram.webhook_path, secret, deliver)
        await http.start(settings.http.host, settings.http.port)
    try:
        if webhook:
            await tg.start_webhook(application, webhook, secret)
        else:
            await tg.start(application)
        await runtime.start_pushes(TelegramNotifier(application.bot))
        log.info("bot serving", extra={"mode": runtime.mode.value, "transport": "webhook" if webhook else "polling"})
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        # The outbox first: the push in hand is sent (and marked) while the Application can still send.
        if runtime.sender is not None:
            await runtime.sender.stop()
        await tg.stop(application)
        if http is not None:
            await http.stop()
