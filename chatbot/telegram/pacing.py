"""Telegram flood control: PTB's AIORateLimiter (group limits, RetryAfter) with three changes.

* The overall limit (one bot token: about 30 messages a second, all chats together) is shared
  **fairly**: requests wait in one queue per chat and the chats take turns (round robin), so a chat
  with many sends queued (a burst of pushes, a fast clicker) delays only itself, never the others;
  and an *urgent* request (the short "you are queued" notice) goes ahead of the turns.
* One message per interval to each private chat, which AIORateLimiter does not do.
* At most ``max_in_flight`` requests on the wire at once (the long poll apart); the rest wait their
  turn here, after the flood limits, in the order those let them go. httpcore's connection pool
  walks every connection on each request and each reply (a poll(2) for each idle one, and a count
  of the idle ones for each idle one), and PTB's pool allows 256 connections, each kept alive 5 s
  after its last use: a burst of concurrent sends left the pool that large, and every request of
  the next seconds paid for all of it (50 users on the fake Bot API: 20–45 connections; one request
  on loopback costs ~35 µs more CPU per idle connection, +0.5–1.5 ms a request at that size). A
  request waiting here costs nothing per connection. Telegram's ~30 messages a second need
  30 × the round trip in flight: 12 carry them up to a 0.4 s round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import Any

import httpx
from telegram.error import Forbidden, TimedOut
from telegram.ext import AIORateLimiter

PACED_ENDPOINTS = frozenset({"sendMessage", "editMessageText", "sendPhoto", "editMessageReplyMarkup",
                             "sendDocument"})
URGENT = "urgent"  # rate_limit_args for a request that goes ahead of the chats' turns
MAX_TRACKED_CHATS = 10_000
MAX_IN_FLIGHT = 12  # Bot API requests on the wire at once (see the module docstring); the pool's size
LONG_POLL = "getUpdates"  # held open for seconds on its own connections: never counted in flight
# A request whose connection was not made in time (PTB raises TimedOut from these) never reached Telegram.
NEVER_SENT = (httpx.ConnectTimeout, httpx.PoolTimeout)
UNSENT_PAUSES = (0.5, 1.0, 2.0)  # seconds before each new attempt at a request that never left
log = logging.getLogger(__name__)

# The chat (0: none) and urgency of the request being sent: read by the overall limiter, which
# AIORateLimiter enters as a plain ``async with`` without arguments.
_SENDING: contextvars.ContextVar[tuple[int, bool]] = contextvars.ContextVar("sending", default=(0, False))


class FairLimiter:
    """A leaky bucket (``rate`` a second) whose waiters take turns by chat.

    Bursts are small (a tenth of a second's worth): AIORateLimiter's bucket let a full second's
    worth through at once, so a busy second could carry twice the rate. Used as ``async with
    limiter:``; the chat and urgency come from the context of the request."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate / 10)
        self._level = 0.0
        self._checked = 0.0
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._queues: dict[int, deque[asyncio.Future[None]]] = {}  # chat -> its waiting requests
        self._turns: deque[int] = deque()  # chats with waiting requests, in turn order
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return len(self._urgent) + sum(len(q) for q in self._queues.values())

    async def __aenter__(self) -> None:
        chat, urgent = _SENDING.get()
        await self.acquire(chat, urgent)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def acquire(self, chat: int = 0, urgent: bool = False) -> None:
        if not self.waiting and self._take():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if urgent:
            self._urgent.append(future)
        else:
            queue = self._queues.get(chat)
            if queue is None:
                queue = self._queues[chat] = deque()
                self._turns.append(chat)
            queue.append(future)
        self._grant()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._level = max(0.0, self._level - 1)  # granted, then cancelled: give the slot back
            else:
                self._forget(future, chat, urgent)
            self._grant()
            raise

    def _leak(self) -> None:
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._checked) * self.rate)
        self._checked = now

    def _take(self) -> bool:
        self._leak()
        if self._level + 1 <= self.capacity:
            self._level += 1
            return True
        return False

    def _next(self) -> asyncio.Future[None] | None:
        while self._urgent:
            future = self._urgent.popleft()
            if not future.done():
                return future
        while self._turns:
            chat = self._turns.popleft()
            queue = self._queues[chat]
            future = queue.popleft()
            if queue:
                self._turns.append(chat)  # its next request waits for the other chats' turns
            else:
                del self._queues[chat]
            if not future.done():
                return future
        return None

    def _grant(self) -> None:
        """Wake as many waiters, in turn, as there is room for; then come back when there is more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.waiting and self._take():
            future = self._next()
            if future is None:
                self._level -= 1
                break
            future.set_result(None)
        if self.waiting:
            delay = (self._level + 1 - self.capacity) / self.rate
            self._timer = asyncio.get_running_loop().call_later(max(delay, 0.001), self._grant)

    def _forget(self, future: asyncio.Future[None], chat: int, urgent: bool) -> None:
        if urgent:
            with contextlib.suppress(ValueError):
                self._urgent.remove(future)
            return
        queue = self._queues.get(chat)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(future)
        if not queue:
            del self._queues[chat]
            with contextlib.suppress(ValueError):
                self._turns.remove(chat)


class InFlightSlots:
    """At most ``size`` requests on the wire; a request waiting for a slot gets the next one free, an urgent
    request before the others (a plain semaphore queued it behind every send the flood limits had let go
    before it: when the wire is slow, a backlog of a second or more, and the "you are queued" notice is late
    by all of it)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool) -> AsyncIterator[None]:
        if self._free > 0 and not self._urgent and not self._others:
            self._free -= 1
        else:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            (self._urgent if urgent else self._others).append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():  # handed a slot as it was cancelled: the next one's
                    self._release()
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for waiting in (self._urgent, self._others):
            while waiting:
                turn = waiting.popleft()
                if not turn.done():  # (a cancelled waiter's turn is done: skipped)
                    turn.set_result(None)
                    return
        self._free += 1


class ChatPacedRateLimiter(AIORateLimiter):
    def __init__(self, per_chat_interval: float = 1.0, *, overall_max_rate: float = 30.0,
                 max_in_flight: int = MAX_IN_FLIGHT, **kwargs: Any) -> None:
        super().__init__(overall_max_rate=overall_max_rate, **kwargs)
        self._in_flight = InFlightSlots(max_in_flight)
        if self._base_limiter is not None:  # AIORateLimiter enters it for every request with a chat_id
            self._base_limiter = FairLimiter(overall_max_rate)  # type: ignore[assignment]
        self.per_chat_interval = per_chat_interval
        self._next_slot: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._delivered: dict[int, float] = {}  # chat -> when it last got a message (not an urgent one)
        self.refused_by: set[int] = set()  # chats whose sends Telegram refused (the user blocked the bot)

    def last_delivery(self, chat: int) -> float:
        """When (time.monotonic) ``chat`` last got a message or an edit from us; 0.0 if not lately."""
        return self._delivered.get(chat, 0.0)

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: Any) -> Any:
        urgent = rate_limit_args == URGENT
        if urgent:
            rate_limit_args = None
        chat_id = data.get("chat_id")
        chat = 0
        if isinstance(chat_id, int | str):
            with contextlib.suppress(ValueError):
                chat = int(chat_id)
        token = _SENDING.set((chat, urgent))
        try:
            if self.per_chat_interval > 0 and endpoint in PACED_ENDPOINTS and chat > 0:
                await self._pace(chat)  # private chats; groups are paced by AIORateLimiter
            if endpoint != LONG_POLL:  # innermost: a slot is taken once the flood limits let the request go
                args, callback = (callback, urgent, *args), self._send_in_turn
            result = await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        except Forbidden:
            if chat:
                self.refused_by.add(chat)  # the access gate notes the user's return
            raise
        finally:
            _SENDING.reset(token)
        if chat > 0 and not urgent and endpoint in PACED_ENDPOINTS:
            self._delivered[chat] = time.monotonic()
            if len(self._delivered) > MAX_TRACKED_CHATS:
                self._prune_delivered()
        return result

    async def _send_in_turn(self, send: Callable[..., Coroutine[Any, Any, Any]], urgent: bool, *args: Any,
                            **kwargs: Any) -> Any:
        """Send in a slot on the wire; a request that never left (its connection not made in time: nothing reached
        Telegram, so sending it again cannot double a message) is sent again, a few times, pausing between."""
        for pause in (*UNSENT_PAUSES, None):
            try:
                async with self._in_flight.slot(urgent):
                    return await send(*args, **kwargs)
            except TimedOut as exc:
                if pause is None or not isinstance(exc.__cause__, NEVER_SENT):
                    raise
                log.warning("a Bot API request never left (no connection in time); sending it again",
                            extra={"error": type(exc.__cause__).__name__, "pause_s": pause})
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def _pace(self, chat: int) -> None:
        lock = self._locks.setdefault(chat, asyncio.Lock())
        async with lock:
            wait = self._next_slot.get(chat, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_slot[chat] = time.monotonic() + self.per_chat_interval
            if len(self._next_slot) > MAX_TRACKED_CHATS:
                self._prune()

    def _prune(self) -> None:
        now = time.monotonic()
        for chat, slot in list(self._next_slot.items()):
            if slot < now:
                self._next_slot.pop(chat, None)
                lock = self._locks.get(chat)
                if lock is not None and not lock.locked():
                    self._locks.pop(chat, None)

    def _prune_delivered(self) -> None:
        """Forget the half of the chats that heard from us longest ago (seconds matter here, not
        minutes: a waiting user is one who heard nothing for a few seconds)."""
        keep = sorted(self._delivered.items(), key=lambda item: item[1])[len(self._delivered) // 2:]
        self._delivered = dict(keep)
