"""Serve the bot until told to stop: the Application over the services, polling or webhook, the
HTTP endpoint (health, metrics, webhook), the push delivery; and a clean stop."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any

from telegram import Update

from chatbot import __version__
from chatbot.config import Settings
from chatbot.metrics import Metrics, families
from chatbot.service.services import Services
from chatbot.telegram import app as tg
from chatbot.telegram.notifier import TelegramNotifier

if TYPE_CHECKING:  # aiohttp, imported only when there is an HTTP endpoint to serve
    from chatbot.http_server import HttpServer

log = logging.getLogger(__name__)


async def serve(services: Services, settings: Settings, stop: asyncio.Event, *, metrics: Metrics | None = None,
                ready: asyncio.Event | None = None) -> None:
    """``metrics``: where the runtime already counts KIS requests (its ``observe_kis``); a new one if None."""
    application = tg.build_application(settings.telegram, services)
    metrics = metrics or Metrics()
    metrics.add_snapshot(lambda: families(services.operations.figures()))
    application.bot_data["metrics"] = metrics

    def health() -> dict[str, Any]:
        return {"ok": True, "mode": services.mode.value, "version": __version__,
                "feed_connected": services.operations.figures().feed_connected}

    webhook = settings.telegram.webhook_url
    http: HttpServer | None = None
    if settings.http.port or webhook:
        from chatbot.http_server import HttpServer, MalformedUpdate

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
        await services.pushes.start(TelegramNotifier(application.bot))
        log.info("bot serving", extra={"mode": services.mode.value, "transport": "webhook" if webhook else "polling"})
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        # The outbox first: the push in hand is sent (and marked) while the Application can still send.
        await services.pushes.stop()
        await tg.stop(application)
        if http is not None:
            await http.stop()
