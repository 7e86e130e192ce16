"""A fake Telegram Bot API server on loopback: real HTTP in front of :class:`BotApiEmulator`.

python-telegram-bot POSTs form-encoded (or multipart) parameters to ``/bot<token>/<method>``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiohttp import web

from chatbot.console.botapi import BotApiEmulator


class FakeTelegram:
    def __init__(self, token: str) -> None:
        self.token = token
        self.emulator = BotApiEmulator(keep=None)  # tests read a whole run's transcript back
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._delivery: asyncio.Task[None]
        self.url = ""
        self._stopping = False

    async def start(self) -> None:
        app = web.Application(client_max_size=20 << 20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._delivery = asyncio.create_task(self._deliver_webhooks())
        self.webhook_statuses: list[int] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    async def stop(self) -> None:
        self._stopping = True  # Python 3.11's wait_for can swallow a cancel that meets a wake-up: exit anyway
        # A long poll still held (its bot gone: a killed or stopped process, whose getUpdates asked for 10 s)
        # returns now: the server's clean-up waits for every request it is handling.
        self.emulator.release_pollers()
        self._delivery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._delivery
        if self._runner is not None:
            await self._runner.cleanup()

    async def _deliver_webhooks(self) -> None:
        """With a webhook set, post each update to it as Telegram does (secret token header included)."""
        api = self.emulator
        async with aiohttp.ClientSession() as session:
            while not self._stopping:
                event = api._event()
                if not api.webhook_url or not api.updates:
                    event.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), 0.5)
                    continue
                update = api.updates.pop(0)
                headers = {"X-Telegram-Bot-Api-Secret-Token": api.webhook_secret}
                try:
                    async with session.post(api.webhook_url, json=update, headers=headers) as response:
                        self.webhook_statuses.append(response.status)
                except aiohttp.ClientError:
                    api.updates.insert(0, update)
                    await asyncio.sleep(0.2)

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params: dict[str, Any] = {}
        try:
            if request.can_read_body:
                if request.content_type == "application/json":
                    params = await request.json()
                else:
                    form = await request.post()
                    for key, value in form.items():
                        params[key] = value.file.read() if isinstance(value, web.FileField) else value
        except ConnectionResetError:  # the bot went away mid-request (it is stopping): nothing arrived
            return web.Response(status=499)
        status, body = await self.emulator.call(request.match_info["method"], params)
        return web.json_response(body, status=status)
