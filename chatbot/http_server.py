"""The bot's own HTTP endpoint (behind a reverse proxy): ``/healthz``, ``/metrics`` (Prometheus) and,
in webhook mode, the Telegram webhook, which checks Telegram's secret-token header."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chatbot.metrics import Metrics

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class MalformedUpdate(ValueError):
    """A webhook update that passed the secret but cannot be read as an Update."""


class HttpServer:
    def __init__(self, metrics: Metrics, health: Callable[[], dict[str, Any]]) -> None:
        self.metrics = metrics
        self.health = health
        self.app = web.Application(client_max_size=1 << 20)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def add_webhook(self, path: str, secret: str, deliver: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        async def webhook(request: web.Request) -> web.Response:
            if not hmac.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
                log.warning("webhook call without the right secret token refused")
                return web.Response(status=403)
            # Whatever passes the secret is answered 200: Telegram re-sends an update it gets an error for,
            # so a malformed one would block the webhook. It is logged (without its content) and dropped.
            try:
                data = await request.json()
            except (ValueError, UnicodeDecodeError):
                log.warning("webhook update dropped: not JSON")
                return web.Response(text="ok")
            update_id = data.get("update_id") if isinstance(data, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                log.warning("webhook update dropped: no update_id")
                return web.Response(text="ok")
            try:
                await deliver(data)
            except MalformedUpdate as exc:
                log.warning("webhook update dropped: malformed", extra={"update_id": update_id, "error": str(exc)})
            except Exception:
                log.exception("webhook update dropped: could not be queued", extra={"update_id": update_id})
            return web.Response(text="ok")

        self.app.router.add_post(path, webhook)

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("http endpoint listening", extra={"host": host, "port": self.port})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response(self.health())

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})
