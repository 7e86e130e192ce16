"""Telegram flood control: PTB's AIORateLimiter (global and group limits) plus one message per
interval to each private chat, which AIORateLimiter does not do."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import Forbidden
from telegram.ext import AIORateLimiter

PACED_ENDPOINTS = frozenset({"sendMessage", "editMessageText", "sendPhoto", "editMessageReplyMarkup",
                             "sendDocument"})


class ChatPacedRateLimiter(AIORateLimiter):
    def __init__(self, per_chat_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.per_chat_interval = per_chat_interval
        self._next_slot: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.refused_by: set[int] = set()  # chats whose sends Telegram refused (the user blocked the bot)

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: Any) -> Any:
        chat_id = data.get("chat_id")
        if self.per_chat_interval > 0 and endpoint in PACED_ENDPOINTS and isinstance(chat_id, int | str):
            try:
                chat = int(chat_id)
            except ValueError:
                chat = 0
            if chat > 0:  # private chats; groups are paced by AIORateLimiter
                lock = self._locks.setdefault(chat, asyncio.Lock())
                async with lock:
                    wait = self._next_slot.get(chat, 0.0) - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    self._next_slot[chat] = time.monotonic() + self.per_chat_interval
                    if len(self._next_slot) > 10_000:
                        self._prune()
        try:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        except Forbidden:
            if isinstance(chat_id, int | str):
                with contextlib.suppress(ValueError):
                    self.refused_by.add(int(chat_id))  # the access gate notes the user's return
            raise

    def _prune(self) -> None:
        now = time.monotonic()
        for chat, slot in list(self._next_slot.items()):
            if slot < now:
                self._next_slot.pop(chat, None)
                lock = self._locks.get(chat)
                if lock is not None and not lock.locked():
                    self._locks.pop(chat, None)
