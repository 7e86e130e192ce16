"""Access-token lifecycle: reuse until shortly before expiry, persist across restarts, one issuance
at a time, re-issue once when KIS says the token expired; and :class:`SingleFlight`, which makes the
WebSocket approval-key issuance one request per app key however many sessions ask at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from chatbot.kis import protocol as p
from chatbot.kis.errors import KisAuthError, KisTokenIssueThrottled
from chatbot.security.credentials import REFRESH_MARGIN_SECONDS as REFRESH_MARGIN_SECONDS  # noqa: PLC0414
from chatbot.security.credentials import CachedToken as CachedToken  # noqa: PLC0414 (moved; re-exported)

log = logging.getLogger(__name__)
T = TypeVar("T")


class TokenStore(Protocol):
    async def load(self, key: str) -> CachedToken | None: ...

    async def save(self, key: str, token: CachedToken) -> None: ...

    async def delete(self, key: str) -> None: ...


class MemoryTokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, CachedToken] = {}

    async def load(self, key: str) -> CachedToken | None:
        return self.tokens.get(key)

    async def save(self, key: str, token: CachedToken) -> None:
        self.tokens[key] = token

    async def delete(self, key: str) -> None:
        self.tokens.pop(key, None)


def token_cache_key(scope: str, app_key: str, app_secret: str) -> str:
    """Where a token is cached: a digest of environment, app key and secret (none of them is stored).

    The secret is part of it so that knowing an app key never finds someone else's token."""
    return hashlib.sha256(f"{scope}\n{app_key}\n{app_secret}".encode()).hexdigest()


def parse_token_reply(body: dict[str, object], now: float) -> CachedToken:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise KisAuthError("token reply without access_token")
    expires_at: float | None = None
    text = body.get("access_token_token_expired")
    if isinstance(text, str) and text:
        try:
            expires_at = dt.datetime.strptime(text, p.TOKEN_TIME_FORMAT).replace(tzinfo=p.KST).timestamp()
        except ValueError:
            expires_at = None
    if expires_at is None:
        try:
            expires_at = now + float(body.get("expires_in", p.TOKEN_LIFETIME_SECONDS))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            expires_at = now + p.TOKEN_LIFETIME_SECONDS
    return CachedToken(token, expires_at, now)


class TokenManager:
    """Hands out a valid token; ``issue`` performs the actual ``/oauth2/tokenP`` call."""

    def __init__(self, key: str, store: TokenStore, issue: Callable[[], Awaitable[CachedToken]],
                 clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.store = store
        self._issue = issue
        self.clock = clock
        self._token: CachedToken | None = None
        self._lock = asyncio.Lock()
        self.issued = 0
        # How long a refused issuance ("one token a minute") looks in the store for the token another
        # process (a replica) issued and is about to save there.
        self.issued_elsewhere_patience = 5.0

    async def get(self) -> str:
        token = self._token
        if token is not None and token.usable(self.clock()):
            return token.access_token
        async with self._lock:  # concurrent first callers share one issuance
            token = self._token
            if token is not None and token.usable(self.clock()):
                return token.access_token
            cached = await self.store.load(self.key)
            if cached is not None and cached.usable(self.clock()):
                self._token = cached
                return cached.access_token
            try:
                fresh = await self._issue()
            except KisTokenIssueThrottled:
                # Another process on the same store (a replica) issued one a moment ago: its copy is saved there.
                found = await self._issued_elsewhere()
                if found is None:
                    raise
                self._token = found
                return found.access_token
            self.issued += 1
            await self.store.save(self.key, fresh)
            self._token = fresh
            log.info("kis token issued", extra={"expires_at": fresh.expires_at})
            return fresh.access_token

    async def _issued_elsewhere(self) -> CachedToken | None:
        """The token another process issued and is about to save (looked for up to
        :attr:`issued_elsewhere_patience` seconds)."""
        deadline = time.monotonic() + self.issued_elsewhere_patience
        while True:
            cached = await self.store.load(self.key)
            if cached is not None and cached.usable(self.clock()):
                return cached
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.25)

    async def current(self) -> str | None:
        """The token in use (this process's, else the store's), without issuing one; None when there is none."""
        async with self._lock:
            token = self._token or await self.store.load(self.key)
            return token.access_token if token is not None and token.usable(self.clock(), 0.0) else None

    async def invalidate(self, access_token: str) -> None:
        """Forget ``access_token`` (KIS said it expired); the next ``get`` issues a new one."""
        async with self._lock:
            if self._token is not None and self._token.access_token == access_token:
                self._token = None
            cached = await self.store.load(self.key)
            if cached is not None and cached.access_token == access_token:
                await self.store.delete(self.key)


class SingleFlight(Generic[T]):
    """Concurrent calls under one key share one run of the work: the first starts it, the others
    wait for the same outcome (a failure too). Nothing is kept afterwards: the next call runs it again.

    A caller cancelled while waiting leaves the run going for the others. Runs are kept per event
    loop (a run belongs to the loop that started it)."""

    def __init__(self) -> None:
        self._runs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[T]]] = (
            weakref.WeakKeyDictionary())
        self.started = 0  # runs started (not shared): what the callers cost the server

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        runs = self._runs.setdefault(asyncio.get_running_loop(), {})
        task = runs.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            runs[key] = task
            self.started += 1
            task.add_done_callback(lambda done: self._finished(runs, key, done))
        return await asyncio.shield(task)

    @staticmethod
    def _finished(runs: dict[str, asyncio.Task[T]], key: str, task: asyncio.Task[T]) -> None:
        if runs.get(key) is task:
            del runs[key]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have been cancelled before the outcome came


# One WebSocket approval-key request at a time per app key (KIS_API.md §3.3), across every client of this
# process on that key: the operator's feed sessions, each user's notice session and the feed planner's
# sessions starting together ask once. Keys are digests (:func:`approval_flight_key`), never the app key.
APPROVAL_FLIGHTS: SingleFlight[str] = SingleFlight()


def approval_flight_key(server: str, app_key: str, app_secret: str) -> str:
    """What approval-key requests are shared under: the server and the key pair, digested."""
    return hashlib.sha256(f"approval\n{server}\n{app_key}\n{app_secret}".encode()).hexdigest()
