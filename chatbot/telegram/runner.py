"""Serve the bot until told to stop: the Application over the services, polling or webhook, the
HTTP endpoint (health, metrics, webhook), the push delivery; and a clean stop."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import TYPE_CHECKING, Any

from telegram import Update

from chatbot import __version__
from chatbot.config import Settings
from chatbot.service.replicas import POLLER, Replicas
from chatbot.service.services import Services
from chatbot.telegram import app as tg
from chatbot.telegram.notifier import TelegramNotifier

if TYPE_CHECKING:  # aiohttp and prometheus_client, imported only when there is an HTTP endpoint to serve
    from chatbot.http_server import HttpServer
    from chatbot.metrics import Metrics

log = logging.getLogger(__name__)


def derived_secret(token: str) -> str:
    """A webhook secret every replica computes alike from the bot token (Telegram allows A-Z a-z 0-9 _ -)."""
    return hmac.new(token.encode(), b"kis-chatops webhook secret", hashlib.sha256).hexdigest()


async def forwarded(replicas: Replicas, update: Update, data: dict[str, Any], secret: str, path: str) -> bool:
    """Replicas: /login's steps live in the memory of the replica where it began. An update from a user
    whose /login is in progress on another live replica is forwarded there (True); one that starts a
    /login here is noted. When the other replica cannot be reached the update is processed here."""
    user = update.effective_user
    if user is None or replicas.single_process:
        return False
    try:
        text = update.message.text if update.message is not None else None
        if text and text.split(maxsplit=1)[0].split("@")[0] == "/login":
            await replicas.login_started(user.id)
            return False
        url = await replicas.login_elsewhere(user.id)
        if url is None:
            return False
        import aiohttp

        from chatbot.http_server import SECRET_HEADER

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, session.post(
                url + path, json=data, headers={SECRET_HEADER: secret}) as response:
            if response.status == 200:
                log.info("update forwarded to the replica holding its /login", extra={"update_id": update.update_id})
                return True
            log.warning("the replica holding a /login did not take its update", extra={"status": response.status})
    except Exception:  # its replica unreachable, or the database: processed here (the /login may restart)
        log.warning("could not forward an update to the replica holding its /login", exc_info=True)
    return False


async def first_delivery(replicas: Replicas, update_id: int) -> bool:
    """Is the update this replica's to process? When the database cannot say, it is (a duplicate is less
    harm than a lost update: cards, alerts and orders are single-use by database state anyway)."""
    try:
        return await replicas.first_delivery(update_id)
    except Exception:  # any database fault: processed rather than lost
        log.warning("could not record the webhook update as taken; processing it", exc_info=True,
                    extra={"update_id": update_id})
        return True


async def serve(services: Services, settings: Settings, stop: asyncio.Event, *, metrics: Metrics | None = None,
                ready: asyncio.Event | None = None) -> None:
    """``metrics``: where the runtime already counts KIS requests (its ``observe_kis``); a new one if None.
    Metrics are kept only when they can be read: with an HTTP endpoint (/metrics); without one there
    is nothing to count for, and prometheus_client is not imported."""
    application = tg.build_application(settings.telegram, services)
    webhook = settings.telegram.webhook_url
    if settings.http.port or webhook:
        from chatbot.metrics import Metrics, families

        metrics = metrics or Metrics()
        metrics.add_snapshot(lambda: families(services.operations.figures()))
        application.bot_data["metrics"] = metrics

    def health() -> dict[str, Any]:
        return {"ok": True, "mode": services.mode.value, "version": __version__,
                "feed_connected": services.operations.figures().feed_connected,
                "roles": sorted(services.replicas.active) if services.replicas is not None else []}

    http: HttpServer | None = None
    if metrics is not None and (settings.http.port or webhook):
        from chatbot.http_server import HttpServer, MalformedUpdate

        http = HttpServer(metrics, health)
        if webhook:
            # Replicas behind one URL must agree on the secret (each sets the webhook): unless configured,
            # one derived from the bot token (only who has the token can know it).
            secret = settings.telegram.webhook_secret or derived_secret(settings.telegram.token)
            replicas = services.replicas

            async def deliver(data: dict[str, Any]) -> None:
                try:
                    update = Update.de_json(data, application.bot)
                except (TypeError, ValueError, KeyError, AttributeError) as exc:  # malformed
                    raise MalformedUpdate(f"{type(exc).__name__}") from None
                if replicas is not None and await forwarded(replicas, update, data, secret,
                                                            settings.telegram.webhook_path):
                    return  # the user's /login is in progress on another replica: handled there
                if replicas is not None and not await first_delivery(replicas, update.update_id):
                    log.info("webhook update already taken; dropped", extra={"update_id": update.update_id})
                    return  # re-sent by Telegram: another replica (or this one) has it
                await application.update_queue.put(update)

            http.add_webhook(settings.telegram.webhook_path, secret, deliver)
        await http.start(settings.http.host, settings.http.port)
    try:
        if webhook:
            await tg.start_webhook(application, webhook, secret)
        elif services.replicas is not None and not services.replicas.single_process:
            await tg.start_standby(application)  # long polling allows one poller: the replica owning the role
            services.replicas.add(POLLER, lambda since: tg.start_polling(application), lambda: tg.stop_polling(application))
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
