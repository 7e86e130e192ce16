"""python-telegram-bot's request layer pointed at the in-process :class:`BotApiEmulator`."""

from __future__ import annotations

import json
from typing import Any

from telegram.request import BaseRequest, RequestData

from chatbot.console.botapi import BotApiEmulator


class EmulatorRequest(BaseRequest):
    def __init__(self, emulator: BotApiEmulator) -> None:
        self.emulator = emulator

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None, connect_timeout: Any = None,
                         pool_timeout: Any = None) -> tuple[int, bytes]:
        params: dict[str, Any] = dict(request_data.json_parameters) if request_data else {}
        if request_data is not None and request_data.contains_files:
            for name, part in (request_data.multipart_data or {}).items():
                params[name] = part[1] if isinstance(part, tuple) else part
        status, body = await self.emulator.call(url.rsplit("/", 1)[-1], params)
        return status, json.dumps(body).encode()
