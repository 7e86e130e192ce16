"""Updates of different chats run concurrently; updates of one chat run in the order they came;
and a user kept waiting is told so.

PTB handles updates one at a time by default, so one slow KIS call (a timeout being reconciled)
would hold every user. Per chat, order matters (a registration's steps, a card and its press).

The bound on updates handled at once is taken only when a chat's turn has come: an update waiting
behind its own chat's earlier ones holds no shared slot (PTB's own bound, taken before, would let
one chat's backlog hold slots every other chat needs).

Overload is said, not silent: when a chat has an update in hand and has heard nothing from the bot
for ``patience`` seconds (its reply is queued behind Telegram's flood limit, KIS's pace or the
database), ``on_waiting`` is called once for that wait (the front end sends one short notice); a
new wait begins when a message reaches the chat. Notices to one chat are at least ``retell_after``
seconds apart: under sustained overload every reply waits, and a notice on every command would
spend the very sending budget the replies queue for (a user told a moment ago knows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)
UNBOUNDED = 1 << 30  # PTB's semaphore: never the limit (ours is, once a chat's turn has come)
OnWaiting = Callable[[Update], Awaitable[None]]


@dataclass(slots=True)
class _Wait:
    """A chat's updates in hand, and since when it has heard nothing from the bot."""

    since: float
    update: Update  # the latest one (what the notice answers: its language)
    in_hand: int = 0
    told: bool = False
    timer: asyncio.TimerHandle | None = None


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256, *, patience: float = 3.0, retell_after: float = 30.0,
                 last_delivery: Callable[[int], float] | None = None, on_waiting: OnWaiting | None = None) -> None:
        super().__init__(UNBOUNDED)
        self._running = asyncio.Semaphore(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self.patience = patience
        self.retell_after = retell_after
        self._told_at: dict[int, float] = {}  # chat -> when last told (pruned once older than retell_after)
        self.last_delivery = last_delivery
        self.on_waiting = on_waiting
        self._waits: dict[int, _Wait] = {}
        self._notices: set[asyncio.Task[None]] = set()
        self.notices_sent = 0

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = 0
        if isinstance(update, Update):
            chat, user = update.effective_chat, update.effective_user
            key = chat.id if chat is not None else user.id if user is not None else 0
            if key > 0:
                self._arrived(key, update)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock, self._running:
                await coroutine
        finally:
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(key, None)
            if key in self._waits:
                self._finished(key)

    # -- telling a waiting user --------------------------------------------------------------------------
    def _arrived(self, chat: int, update: Update) -> None:
        wait = self._waits.get(chat)
        if wait is None:
            wait = self._waits[chat] = _Wait(time.monotonic(), update)
        wait.update = update
        wait.in_hand += 1
        if wait.timer is None and self.on_waiting is not None and self.patience > 0:
            wait.timer = asyncio.get_running_loop().call_later(self.patience, self._check, chat)

    def _finished(self, chat: int) -> None:
        wait = self._waits[chat]
        wait.in_hand -= 1
        if wait.in_hand <= 0:
            if wait.timer is not None:
                wait.timer.cancel()
            del self._waits[chat]

    def _check(self, chat: int) -> None:
        wait = self._waits.get(chat)
        if wait is None:
            return
        wait.timer = None
        now = time.monotonic()
        heard = self.last_delivery(chat) if self.last_delivery is not None else 0.0
        if heard > wait.since:  # a message reached the chat: a new wait starts from it
            wait.since, wait.told = heard, False
        if (not wait.told and now - wait.since >= self.patience and self.on_waiting is not None
                and now - self._told_at.get(chat, -1e9) >= self.retell_after):
            wait.told = True
            self._told_at[chat] = now
            if len(self._told_at) > 1_000:
                self._told_at = {c: at for c, at in self._told_at.items() if now - at < self.retell_after}
            self.notices_sent += 1
            task = asyncio.create_task(self._tell(wait.update), name=f"queued-notice-{chat}")
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)
        wait.timer = asyncio.get_running_loop().call_later(
            max(wait.since + self.patience - now, 0.0) if not wait.told else self.patience, self._check, chat)

    async def _tell(self, update: Update) -> None:
        assert self.on_waiting is not None
        try:
            await self.on_waiting(update)
        except Exception:  # a notice is a courtesy: it never fails the update it is about
            log.warning("could not tell a waiting user they are queued", exc_info=True)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        for wait in self._waits.values():
            if wait.timer is not None:
                wait.timer.cancel()
                wait.timer = None
        for task in list(self._notices):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
