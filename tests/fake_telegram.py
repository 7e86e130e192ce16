"""A fake Telegram Bot API server on loopback: real HTTP in front of :class:`BotApiEmulator`.

python-telegram-bot POSTs form-encoded (or multipart) parameters to ``/bot<token>/<method>``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from chatbot.console.botapi import BotApiEmulator


class FakeTelegram:
    def __init__(self, token: str) -> None:
        self.token = token
        self.emulator = BotApiEmulator()
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=20 << 20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params: dict[str, Any] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                params = await request.json()
            else:
                form = await request.post()
                for key, value in form.items():
                    params[key] = value.file.read() if isinstance(value, web.FileField) else value
        status, body = await self.emulator.call(request.match_info["method"], params)
        return web.json_response(body, status=status)
