"""Updates of different chats run concurrently; updates of one chat run in the order they came.

PTB handles updates one at a time by default, so one slow KIS call (a timeout being reconciled)
would hold every user. Per chat, order matters (a registration's steps, a card and its press)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = 0
        if isinstance(update, Update):
            chat, user = update.effective_chat, update.effective_user
            key = chat.id if chat is not None else user.id if user is not None else 0
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                await coroutine
        finally:
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
