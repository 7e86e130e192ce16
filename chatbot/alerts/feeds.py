"""Feed capacity: which WebSocket session carries which symbol (the feed planner).

KIS gives one WebSocket session per app key and 40 subscriptions per session. The planner spreads
the symbols the alert engine needs over every session it may use:

* **A registered user's own session** (virtual/real mode: their own app key) carries *that user's*
  symbols only, 39 of them (one slot stays for their fill notices, :mod:`chatbot.service.fills`,
  which shares the same session through :class:`UserSessions`). A symbol goes there when every
  user watching it has their own session with room: each of them then holds it on their own key
  (a symbol several such users watch takes one shared slot instead while the operator has room).
* **The operator's market-data sessions** (one per configured key, 40 slots each) carry everything
  else, shared: one subscription per symbol for everyone who watches it (paper users, users
  without keys, a user whose own session is full).
* **REST polling**: a symbol beyond every eligible session's room is not refused; it is polled
  on an operator key, within that key's rate limit (a share of it, ``poll_rate`` requests a second),
  every :meth:`FeedPlanner.polled_every` seconds: a domestic one with ``inquire-price``, a US one
  (``DNASAAPL``) with the overseas ``quotations/price`` over the same REST client (same pacer), in one
  round. A polled price goes to the engine as a :class:`~chatbot.kis.frames.Tick` (domestic) or a
  :class:`~chatbot.kis.overseas_frames.UsTick` (US) like any other, so the book and the exactly-once
  firing are the same; what polling cannot see is a crossing that reverts between two polls (the
  user is told the interval).

Capacity is therefore 39 per registered user + 40 per operator key. The plan is recomputed
(:meth:`FeedPlanner.rebalance`) when demand changes and users come and go, keeping every symbol
where it is when it may stay (no churn); a move subscribes the new place before it leaves the
old one, so no tick is missed. Ticks of every session reach the engine as one feed: a drop of a
session carrying symbols is a gap for the engine (its Disconnected), and its return a Reconnected,
after which each symbol's first trade is judged for the day's extremes it missed (the engines' gap
logic, :mod:`chatbot.alerts.gap`). A session let go while down (closed, or its symbols moved to a
live one) owes that Reconnected too: it is sent then, else the gap stayed open for good and every
later drop went unjudged. A session closed (:meth:`UserSessions.close`) is forgotten: its listener
removed, its symbols placed again (on the user's next session, or elsewhere).

Among replicas (PostgreSQL) the planner runs on the feed's owner: it opens a user's own session only
after taking that user's session lock (:attr:`FeedPlanner.claim`, see :mod:`chatbot.service.replicas`),
and its REST pollers poll only while it runs; a replica standing by keeps the plan's lists without
connecting or polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import String, cast, literal_column
from sqlalchemy import select as core_select
from sqlmodel import col, func, select

from chatbot import tasks
from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisError
from chatbot.kis.frames import Decrypt, Tick
from chatbot.kis.models import KST, Quote
from chatbot.kis.overseas import KisOverseasClient
from chatbot.kis.overseas_frames import UsTick
from chatbot.kis.overseas_models import UsQuote
from chatbot.kis.realtime import (
    Disconnected,
    Event,
    Listener,
    RealtimeClient,
    Reconnected,
    SubKey,
    SubscriptionLimitError,
)
from chatbot.kis.rest import KisRestClient
from chatbot.markets.us_hours import NEW_YORK, SEOUL
from chatbot.storage.db import Database
from chatbot.storage.tables import AlertRow

log = logging.getLogger(__name__)

ACTIVE = ("armed", "cooling", "paused")  # an alert in these states keeps its symbol on the feed
FILL_SLOTS = 1  # kept free on a user's own session for their execution notices
ANYONE = -1  # a watcher the planner does not know yet (the engine asked for a symbol by itself)
OPENING = 32  # users' sessions being opened at once
REBALANCE_EVERY = 30.0  # seconds: users' keys may change without the planner being told


Parser = Callable[[str, Decrypt | None], list[Any]]  # a frame's records (RealtimeClient's parser)
TRADES: frozenset[type] = frozenset((Tick, UsTick))  # what the sessions' trade feeds deliver
TRADE_TRS = frozenset((p.WS_TRADE, o.WS_US_TRADE))


def trade_tr(key: str) -> str:
    """The trade feed a symbol's key rides on: HDFSCNT0 for a US realtime key (``DNASAAPL``), else H0STCNT0."""
    return o.WS_US_TRADE if o.parse_realtime_key(key) is not None and not key[1:4].isdigit() else p.WS_TRADE


class AlertFeed(Protocol):
    """What the alert engine needs of its feed: a :class:`RealtimeClient` or a :class:`FeedPlanner`."""

    @property
    def max_subscriptions(self) -> int: ...

    @property
    def reconnects(self) -> int: ...

    @property
    def connected(self) -> asyncio.Event: ...

    @property
    def last_heard(self) -> float | None: ...

    @property
    def subscriptions(self) -> dict[SubKey, int]: ...

    def add_listener(self, listener: Listener) -> Callable[[], None]: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def subscribe(self, tr_id: str, tr_key: str) -> None: ...

    async def unsubscribe(self, tr_id: str, tr_key: str) -> None: ...


class KeyDirectory(Protocol):
    """Whose own key may serve their own symbols, and how to open a session on it."""

    async def own_keys(self, user_ids: Collection[int]) -> set[int]:
        """Those of ``user_ids`` whose own app key serves their own symbols (virtual/real, registered)."""
        ...

    async def approval_key(self, user_id: int) -> Callable[[], Awaitable[str]]: ...

    async def registered(self) -> int:
        """How many users have their own key (each one more 39-slot session)."""
        ...


class Quoter(Protocol):
    async def quote(self, code: str) -> Quote: ...


class UsQuoter(Protocol):
    """A US quote on an operator key (:class:`~chatbot.kis.overseas.KisOverseasClient`)."""

    async def quote(self, symbol: str, exchange: o.UsExchange) -> UsQuote: ...


def us_quoter(rest: Quoter) -> UsQuoter | None:
    """The overseas quotes of an operator key's REST client (same key, same pacer), if it is a KIS one."""
    return KisOverseasClient(rest) if isinstance(rest, KisRestClient) else None


class UserSessions:
    """One WebSocket session per user's app key (KIS allows one per key), shared by everything that
    needs it: the fill watcher (execution notices) and the planner (the user's own symbols)."""

    def __init__(self, ws_url: str, *, max_subscriptions: int = p.WS_CLIENT_MAX_SUBSCRIPTIONS,
                 parser: Parser | None = None) -> None:
        self.ws_url = ws_url
        self.max_subscriptions = max_subscriptions
        self.parser = parser  # None: the client's own (domestic frames)
        self._clients: dict[int, RealtimeClient] = {}
        self._lock = asyncio.Lock()
        self._closed: list[Callable[[int], None]] = []  # told of each session closed (the feed planner)

    def on_close(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(user_id)`` once a user's session is closed (after its last event). Returns a remover."""
        self._closed.append(callback)
        return lambda: self._closed.remove(callback) if callback in self._closed else None

    def _told_closed(self, user_id: int) -> None:
        for callback in list(self._closed):
            try:
                callback(user_id)
            except Exception:
                log.exception("a session-closed callback failed", extra={"user_id": user_id})

    async def session(self, user_id: int, approval_key: Callable[[], Awaitable[str]]) -> RealtimeClient:
        """The user's session, opened (and started) on first use."""
        async with self._lock:
            client = self._clients.get(user_id)
            if client is None:
                client = (RealtimeClient(self.ws_url, approval_key, max_subscriptions=self.max_subscriptions)
                          if self.parser is None else
                          RealtimeClient(self.ws_url, approval_key, max_subscriptions=self.max_subscriptions,
                                         parser=self.parser))
                self._clients[user_id] = client
                await client.start()
            return client

    def get(self, user_id: int) -> RealtimeClient | None:
        return self._clients.get(user_id)

    def __len__(self) -> int:
        return len(self._clients)

    def reconnects(self) -> int:
        return sum(client.reconnects for client in self._clients.values())

    async def close(self, user_id: int) -> None:
        client = self._clients.pop(user_id, None)
        if client is not None:
            await client.aclose()
            self._told_closed(user_id)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.items()), {}
        for user_id, client in clients:
            await client.aclose()
            self._told_closed(user_id)


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """One of the operator's market-data keys: its WebSocket session and its REST client (polling)."""

    session: RealtimeClient
    rest: Quoter
    us: UsQuoter | None = None  # None: the overseas quotes of ``rest`` when it is a KisRestClient


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one symbol is carried: on its watchers' own sessions, on an operator session (shared),
    or polled over REST on an operator key."""

    kind: Literal["own", "shared", "poll"]
    users: frozenset[int] = frozenset()  # own
    operator: int = -1  # shared, poll

    def streams(self) -> set[SessionKey]:
        if self.kind == "own":
            return {("user", u) for u in self.users}
        if self.kind == "shared":
            return {("op", self.operator)}
        return set()


SessionKey = tuple[str, int]  # ("op", index) | ("user", telegram id)


@dataclass(frozen=True, slots=True)
class FeedCapacity:
    """For the operator (/status, metrics): slots used of how many, sessions, polled symbols."""

    operator_sessions: int
    user_sessions: int  # users' own sessions carrying symbols
    registered_users: int
    slots_used: int  # symbol subscriptions placed, every session
    slots_total: int  # 40 per operator key + 39 per registered user
    symbols: int  # distinct symbols the alerts watch
    polled: int  # of them on REST polling
    poll_every: int  # seconds between two polls of a symbol (0: none polled)


def plan(demand: dict[str, frozenset[int]], own: Collection[int], user_room: int, operator_rooms: list[int],
         current: dict[str, Placement], *, unstreamed: Collection[str] = ()) -> dict[str, Placement]:
    """Where every symbol goes (``unstreamed``: symbols no session may stream, polled), in this order of need:

    1. a symbol someone without their own session watches: an operator session (the least full);
    2. a symbol whose watchers all have their own session: on each of those sessions while they all
       have room, else (one of them is full) an operator session;
    3. what fits nowhere: polled, spread over the operator keys;
    4. then, with operator room left, a symbol on several users' own sessions moves to one shared
       subscription (most watchers first): one tick instead of one per session.

    Symbols stay where they are when they may (each step takes the current ones first)."""
    own_set = set(own)
    streamed = {code: owners for code, owners in demand.items() if code not in unstreamed}
    eligible = {code for code, owners in streamed.items() if owners and owners <= own_set}
    free = list(operator_rooms)
    new: dict[str, Placement] = {}

    def was(code: str, kind: str) -> bool:
        return current.get(code, _NOWHERE).kind == kind

    def take_shared(code: str) -> bool:
        before = current.get(code, _NOWHERE)
        if before.kind == "shared" and 0 <= before.operator < len(free) and free[before.operator] > 0:
            free[before.operator] -= 1
            new[code] = before
            return True
        best = max(range(len(free)), key=free.__getitem__, default=-1)
        if best >= 0 and free[best] > 0:
            free[best] -= 1
            new[code] = Placement("shared", operator=best)
            return True
        return False

    must = sorted((code for code in streamed if code not in eligible), key=lambda code: (not was(code, "shared"), code))
    rest = [code for code in must if not take_shared(code)] + sorted(code for code in demand if code in unstreamed)
    load: Counter[int] = Counter()
    for code in sorted(eligible, key=lambda code: (not was(code, "own") and not was(code, "shared"), code)):
        owners = demand[code]
        if all(load[u] < user_room for u in owners):
            load.update(owners)
            new[code] = Placement("own", owners)
        elif not take_shared(code):
            rest.append(code)
    several = [code for code, placement in new.items() if placement.kind == "own" and len(placement.users) > 1]
    for code in sorted(several, key=lambda code: (not was(code, "shared"), -len(demand[code]), code)):
        take_shared(code)
    polls: Counter[int] = Counter()
    for code in rest:
        before = current.get(code, _NOWHERE)
        if before.kind == "poll" and 0 <= before.operator < len(operator_rooms):
            index = before.operator
        else:
            index = min(range(len(operator_rooms)), key=polls.__getitem__, default=0)
        polls[index] += 1
        new[code] = Placement("poll", operator=index)
    return new


_NOWHERE = Placement("poll", operator=-2)


class _Poller:
    """One operator key's REST polling: every symbol in turn, ``rate`` requests a second at most."""

    def __init__(self, rest: Quoter, rate: float, emit: Callable[[Event], None], us: UsQuoter | None = None) -> None:
        self.rest = rest
        self.us = us  # a US symbol's quotes (same key); None: US symbols are not polled
        self.rate = rate
        self.emit = emit
        self.codes: dict[str, None] = {}  # in polling order
        self.polls = 0
        self.errors = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.last_round = 0.0  # seconds the last round of polls took
        self.running = False  # polls only while its planner runs (a replica standing by keeps the list only)

    def every(self) -> int:
        """Seconds between two polls of a symbol: the planned round, or the last one if it took longer."""
        if not self.codes:
            return 0
        return max(1, math.ceil(len(self.codes) / self.rate), math.ceil(self.last_round))

    def polls_us(self) -> bool:
        return self.us is not None

    def add(self, code: str) -> None:
        if trade_tr(code) != p.WS_TRADE and self.us is None:  # no overseas quotes on this key (logged)
            log.warning("a US symbol past every feed slot is not polled", extra={"code": code})
            return
        self.codes[code] = None
        self._wake.set()
        if self._task is None and self.running:
            self._task = asyncio.create_task(self._run(), name="feed-poll")

    def start(self) -> None:
        self.running = True
        if self._task is None and self.codes:
            self._task = asyncio.create_task(self._run(), name="feed-poll")

    def discard(self, code: str) -> None:
        self.codes.pop(code, None)

    async def poll_once(self, code: str) -> None:
        if not self.running:
            return
        us = o.parse_realtime_key(code) if trade_tr(code) != p.WS_TRADE else None
        event: Event
        try:
            if us is not None and self.us is not None:
                event = polled_us_tick(code, await self.us.quote(us[1], us[0]))
            elif us is None:
                event = polled_tick(code, await self.rest.quote(code))
            else:
                return
        except (KisError, OSError, TimeoutError) as exc:
            self.errors += 1
            log.warning("polling a symbol failed", extra={"code": code, "error": type(exc).__name__})
            return
        self.polls += 1
        if code in self.codes:
            self.emit(event)

    async def _run(self) -> None:
        """One request every ``1 / rate`` seconds, not waiting for the replies (a slow answer does not
        slow the round), at most ``rate`` in flight."""
        in_flight = asyncio.Semaphore(max(1, math.ceil(self.rate)))
        while True:
            if not self.codes:
                self._wake.clear()
                await self._wake.wait()
            loop = asyncio.get_running_loop()
            started = due = loop.time()
            for code in list(self.codes):
                if code not in self.codes:
                    continue
                await asyncio.sleep(max(0.0, due - loop.time()))  # on a schedule: a late wake-up does not add up
                due += 1 / self.rate
                await in_flight.acquire()
                task = asyncio.create_task(self.poll_once(code), name="feed-poll-one")
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                task.add_done_callback(lambda _done: in_flight.release())
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.last_round = loop.time() - started

    async def aclose(self) -> None:
        self.running = False
        task, self._task = self._task, None
        tasks = [*([task] if task is not None else []), *self._in_flight]
        for pending in tasks:
            pending.cancel()
        for pending in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await pending


def polled_tick(code: str, quote: Quote) -> Tick:
    """A REST price as a trade tick: the price now, stamped now; no extremes with times (the engine's
    gap check reads none from it: a poll samples the price, it does not see between two polls)."""
    fields = [""] * len(p.TRADE_FIELDS)
    fields[0], fields[1], fields[2] = code, dt.datetime.now(KST).strftime("%H%M%S"), str(quote.price)
    fields[8], fields[9] = str(quote.high), str(quote.low)
    return Tick(fields)


def polled_us_tick(key: str, quote: UsQuote) -> UsTick:
    """A US REST price as an HDFSCNT0 trade keyed ``key`` (``DNASAAPL``): the last price in dollars (the
    engine counts it in ten-thousandths, as a streamed one), stamped now (New York and Seoul); the day's
    open/high/low are not in the quote and are left empty (the engine reads none of them)."""
    fields = [""] * len(o.US_TRADE_FIELDS)
    now = dt.datetime.now(dt.UTC)
    local, kst = now.astimezone(NEW_YORK), now.astimezone(SEOUL)
    fields[0], fields[1], fields[2] = key, quote.symbol, str(quote.decimals)
    fields[3] = fields[4] = local.strftime("%Y%m%d")
    fields[5], fields[6], fields[7] = local.strftime("%H%M%S"), kst.strftime("%Y%m%d"), kst.strftime("%H%M%S")
    fields[11], fields[12] = str(quote.price.amount), quote.sign
    fields[13], fields[14] = str(abs(quote.change.amount)), str(quote.change_rate)
    fields[20], fields[21] = str(quote.volume), str(quote.traded_value.amount)
    return UsTick(fields)


async def read_demand(db: Database, codes: Collection[str] | None = None) -> list[tuple[str, str]]:
    """Who watches what: (symbol, its active alerts' owners joined by commas) for every symbol, or for
    ``codes``. One row per symbol, its owners joined into one string by the database (group_concat /
    string_agg): at start-up, 100,000 alerts of 10,000 users are ~100,000 distinct (symbol, owner)
    pairs, which read as rows cost a SQLAlchemy row and two Python values each."""
    owners = cast(col(AlertRow.owner_id), String)
    joined = (func.group_concat(owners.distinct()) if db.is_sqlite
              else func.string_agg(owners.distinct(), literal_column("','")))
    query = (core_select(col(AlertRow.code), joined).where(col(AlertRow.status).in_(ACTIVE))
             .group_by(col(AlertRow.code)))
    if codes is not None:
        query = query.where(col(AlertRow.code).in_(codes))
    async with db.engine.connect() as conn:
        return [(code, text) for code, text in (await conn.execute(query)).all()]


class FeedPlanner:
    """The alert engine's feed over every session it may use (see the module's doc). To the engine it
    is one feed (:class:`AlertFeed`): ``subscribe(tr, code)`` asks for a symbol, ``unsubscribe`` lets it
    go; who watches it is read from the alerts (:meth:`expect` tells it ahead of a new alert)."""

    def __init__(self, db: Database, operators: list[OperatorKey], users: UserSessions, keys: KeyDirectory, *,
                 poll_rate: float = 10.0, user_slots: int | None = None, streams_us: bool = True) -> None:
        if not operators:
            raise ValueError("the feed planner needs at least one operator market-data key")
        self.db = db
        self.operators = operators
        self.users = users
        self.keys = keys
        self.user_slots = user_slots  # None: each session's maximum less the fill-notice slot
        # False: the server streams no US market data (KIS's paper server): US symbols are polled
        self.streams_us = streams_us
        self._placed: dict[str, Placement] = {}
        self._refs: dict[str, int] = {}  # code -> consumers that subscribed it (as RealtimeClient counts them)
        self._demand: dict[str, set[int]] = {}
        # Start-up on SQLite: who watches what, read by Runtime.start ahead of time (see read_demand);
        # taken by the first whole read (_load_demand), instead of querying then.
        self.early_demand: asyncio.Future[list[tuple[str, str]]] | None = None
        self._own: dict[int, bool] = {}  # user -> their own key serves them (cached until user_changed)
        self._on: dict[SessionKey, set[str]] = {}  # the symbols each session carries for the planner
        # the session each key's listener is on, and its remover (a user's session closed: removed)
        self._listening: dict[SessionKey, tuple[RealtimeClient, Callable[[], None]]] = {}
        self._down: set[SessionKey] = set()  # sessions that dropped carrying symbols, not back (nor let go) yet
        self._listeners: list[Listener] = []
        self._pollers = [_Poller(op.rest, poll_rate, self._emit, op.us if op.us is not None else us_quoter(op.rest))
                         for op in operators]
        self._lock = asyncio.Lock()
        self._opening = asyncio.Semaphore(OPENING)
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._registered = 0
        self.rebalances = 0
        # Replicas (chatbot.service.replicas): may this process open ``user``'s own session? (KIS allows one
        # per key: the replica that owns the feed holds each user's session lock.) None: one process.
        self.claim: Callable[[int], Awaitable[bool]] | None = None
        self._refused: set[int] = set()  # users whose session lock another replica held (asked again later)
        self.moves = 0
        users.on_close(self._session_closed)

    # -- the engine's feed (AlertFeed) ----------------------------------------------------------------------
    @property
    def max_subscriptions(self) -> int:
        return self.capacity().slots_total

    @property
    def reconnects(self) -> int:
        return sum(op.session.reconnects for op in self.operators)

    @property
    def connected(self) -> asyncio.Event:
        return self.operators[0].session.connected

    @property
    def last_heard(self) -> float | None:
        """The earliest last frame (epoch seconds) of the sessions carrying symbols, connected ones only (one
        down has its gap open): a silently dead one looks connected until its ping timeout."""
        sessions = [op.session for op in self.operators]
        sessions += [s for key in self._on if key[0] == "user" and (s := self.users.get(key[1])) is not None]
        heard = [s.last_heard for s in sessions if s.connected.is_set() and s.last_heard is not None]
        return min(heard) if heard else None

    @property
    def subscriptions(self) -> dict[SubKey, int]:
        return {(trade_tr(code), code): 1 for code in self._placed}

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def start(self) -> None:
        self._own.clear()  # asked again: on a replica taking the feed over, refused until now
        self._refused.clear()
        for poller in self._pollers:  # REST polling runs on the feed's owner only
            poller.start()
        for index, op in enumerate(self.operators):
            self._listen(("op", index), op.session)
            await op.session.start()
        await self._load_demand()
        await self.rebalance()
        self._task = asyncio.create_task(self._rebalance_loop(), name="feed-planner")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)
        for poller in self._pollers:
            await poller.aclose()
        for op in self.operators:
            await op.session.aclose()
        for key, codes in list(self._on.items()):  # users' sessions stay open for their fill notices
            session = self.users.get(key[1]) if key[0] == "user" else None
            if session is None:
                continue
            for code in list(codes):
                with contextlib.suppress(Exception):
                    await session.unsubscribe(trade_tr(code), code)
        self._on.clear()
        self._down.clear()  # no gap to track while stopped (a replica taking the feed back assumes one)

    async def subscribe(self, tr_id: str, tr_key: str) -> None:
        """The engine needs ``tr_key``: placed (or polled) before this returns. A session refusing it
        for another reason than its room (KIS refused the approval key, no acknowledgement) raises."""
        code = tr_key
        async with self._lock:
            self._refs[code] = self._refs.get(code, 0) + 1
            if code in self._placed and self._covered(code):
                return
            if code not in self._demand:
                self._demand[code] = await self._owners_of(code) or {ANYONE}
            await self._replan(strict=code)
            if self._unservable(code):
                self._refs[code] -= 1
                if not self._refs[code]:
                    del self._refs[code]
                    self._demand.pop(code, None)
                await self._replan()
                raise self._full()

    def _unservable(self, code: str) -> bool:
        """Past every live slot a symbol is polled over REST, a US one with the overseas quote of the same
        key; only a US symbol on a key without overseas quotes (not a KIS REST client) is refused, as a
        full feed was before the planner."""
        placement = self._placed.get(code)
        return (placement is not None and placement.kind == "poll" and trade_tr(code) != p.WS_TRADE
                and not self._pollers[placement.operator].polls_us())

    def _full(self) -> SubscriptionLimitError:
        return SubscriptionLimitError(f"every session's {self.max_subscriptions} slots are taken",
                                      msg_cd=p.OPSP_MAX_SUBSCRIPTIONS)

    async def unsubscribe(self, tr_id: str, tr_key: str) -> None:
        """One consumer (the alert engine, the conditional orders' trigger engine) lets ``tr_key`` go;
        when none needs it any more it leaves its sessions (its slots go to the next in line)."""
        async with self._lock:
            left = self._refs.get(tr_key, 0) - 1
            if left > 0:
                self._refs[tr_key] = left
                return
            self._refs.pop(tr_key, None)
            self._demand.pop(tr_key, None)
            await self._replan()

    # -- demand --------------------------------------------------------------------------------------------
    async def expect(self, user_id: int, code: str) -> None:
        """``user_id`` is about to set an alert on ``code``: place it so that it is served, before the
        alert exists (the engine's subscribe follows)."""
        async with self._lock:
            owners = self._demand.setdefault(code, set())
            owners.discard(ANYONE)
            if user_id in owners and code in self._placed:
                return
            owners.add(user_id)
            await self._replan(strict=code)
            if self._unservable(code):
                owners.discard(user_id)
                if not owners and not self._refs.get(code):
                    self._demand.pop(code, None)
                await self._replan()
                raise self._full()

    def review(self, code: str) -> None:
        """Who watches ``code`` may have changed (an alert fired or was deleted): re-read soon."""
        self._dirty.add(code)
        self._wake.set()

    def user_changed(self, user_id: int) -> None:
        """A user registered or removed their own key (or left): their symbols move, soon."""
        self._own.pop(user_id, None)
        self._dirty.update(code for code, owners in self._demand.items() if user_id in owners)
        self._wake.set()

    async def _owners_of(self, code: str) -> set[int]:
        async with self.db.session() as session:
            rows = (await session.exec(select(AlertRow.owner_id).distinct().where(
                col(AlertRow.code) == code, col(AlertRow.status).in_(ACTIVE)))).all()
        return set(rows)

    async def _load_demand(self, codes: Iterable[str] | None = None) -> None:
        wanted = set(codes) if codes is not None else None
        early, self.early_demand = (self.early_demand, None) if wanted is None else (None, self.early_demand)
        grouped = await early if early is not None else await read_demand(self.db, wanted)
        found = {code: set(map(int, text.split(","))) for code, text in grouped}
        if wanted is None:
            self._demand = found
            return
        for code in wanted:
            if code in found:
                self._demand[code] = found[code]
            # No active alert on it now: the engine lets it go when it is done with it (an alert being
            # armed, a crossing being fired); until then it stays where it is, for whom it was.

    # -- planning ------------------------------------------------------------------------------------------
    async def rebalance(self) -> None:
        """Re-read who watches what and recompute every symbol's place (moving as few as possible)."""
        dirty, self._dirty = self._dirty, set()
        async with self._lock:
            for user_id in self._refused:  # their session's lock may be free now
                self._own.pop(user_id, None)
            self._refused.clear()
            if dirty:
                await self._load_demand(dirty)
            self._registered = await self.keys.registered()
            await self._replan()
            self.rebalances += 1

    async def _rebalance_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow the stop's cancel
                async with asyncio.timeout(REBALANCE_EVERY):
                    await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.2)  # a burst of changes is one rebalance
            try:
                await self.rebalance()
            except Exception:
                log.exception("feed rebalance failed")

    def _covered(self, code: str) -> bool:
        placement = self._placed[code]
        return placement.kind != "own" or self._demand.get(code, set()) <= placement.users

    def _user_room(self) -> int:
        if self.user_slots is not None:
            return self.user_slots
        return self.users.max_subscriptions - FILL_SLOTS

    async def _replan(self, strict: str | None = None) -> None:
        """Plan and apply (under the lock). ``strict``: the symbol being asked for now, whose failure
        to subscribe for another reason than room is raised to the caller."""
        owners = {u for watchers in self._demand.values() for u in watchers if u != ANYONE}
        unknown = [u for u in owners if u not in self._own]
        if unknown:
            mine = set(await self.keys.own_keys(unknown))
            if self.claim is not None:
                for user_id in list(mine):
                    if not await self.claim(user_id):
                        mine.discard(user_id)
                        self._refused.add(user_id)
            self._own.update({u: u in mine for u in unknown})
        demand = {code: frozenset(watchers) for code, watchers in self._demand.items()}
        rooms = [op.session.max_subscriptions - sum(1 for key in op.session.subscriptions if key[0] not in TRADE_TRS)
                 for op in self.operators]
        unstreamed = () if self.streams_us else [code for code in demand if trade_tr(code) != p.WS_TRADE]
        new = plan(demand, [u for u in owners if self._own.get(u)], self._user_room(), rooms, self._placed,
                   unstreamed=unstreamed)
        await self._apply(new, strict)

    async def _apply(self, new: dict[str, Placement], strict: str | None) -> None:
        old = self._placed
        wanted = [(key, code) for code, placement in new.items() for key in placement.streams()
                  if code not in self._on.get(key, ())]
        if any(code in self._on.get(down, ()) for down in self._down for _key, code in wanted):
            # A symbol a dropped session carries goes on a live one too: the engines hear of a Reconnected
            # first, so its first trade there is judged for the extremes it missed, not taken as seen live.
            self._emit(Reconnected(0))
        results = await asyncio.gather(*(self._subscribe(key, code) for key, code in wanted), return_exceptions=True)
        failure: BaseException | None = None
        for (key, code), result in zip(wanted, results, strict=True):
            if not isinstance(result, BaseException):
                continue
            placement = new[code]
            if key[0] == "user":
                self._own[key[1]] = False  # their session does not work: their symbols go to the shared ones
            if isinstance(result, SubscriptionLimitError) or code != strict or key[0] == "user":
                if not isinstance(result, SubscriptionLimitError):
                    log.warning("a feed session refused a symbol; polled meanwhile",
                                extra={"code": code, "error": type(result).__name__})
                new[code] = Placement("poll", operator=max(placement.operator, 0))
                self._dirty.add(code)
                self._wake.set()
            else:  # told to the caller; where it was before (for its other watchers), it stays
                failure = result
                if code in old:
                    new[code] = old[code]
                else:
                    new.pop(code, None)
        for code, placement in new.items():  # polls start before anything is left
            before = old.get(code)
            if placement.kind == "poll" and (before is None or before != placement):
                first = before is None or before.kind != "poll"
                self._pollers[placement.operator].add(code)
                if first and before is not None:  # it was streamed: a first price now, not in a round
                    await self._pollers[placement.operator].poll_once(code)
        for code, before in old.items():
            after = new.get(code)
            if before.kind == "poll" and (after is None or after != before):
                if after is not None and after.kind != "poll":  # now streamed: one last poll covers the hand-over
                    await self._pollers[before.operator].poll_once(code)
                self._pollers[before.operator].discard(code)
            keep = after.streams() if after is not None else set()
            for key in before.streams() - keep:
                await self._unsubscribe(key, code)
            if after is not None and after != before:
                self.moves += 1
        # Where a subscription failed and the symbol is not placed there after all, it is left again.
        for key, code in wanted:
            if code not in new or key not in new[code].streams():
                await self._unsubscribe(key, code)
        self._placed = new
        if failure is not None:
            raise failure

    async def _session(self, key: SessionKey) -> RealtimeClient:
        if key[0] == "op":
            return self.operators[key[1]].session
        session = await self.users.session(key[1], await self.keys.approval_key(key[1]))
        self._listen(key, session)
        if not session.connected.is_set():  # sessions opening at once (start-up, many users): a few at a time
            async with self._opening:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(session.ack_timeout):
                        await session.connected.wait()
        return session

    async def _subscribe(self, key: SessionKey, code: str) -> None:
        session = await self._session(key)
        await session.subscribe(trade_tr(code), code)
        self._on.setdefault(key, set()).add(code)

    async def _unsubscribe(self, key: SessionKey, code: str) -> None:
        codes = self._on.get(key, set())
        if code not in codes:
            return
        codes.discard(code)
        if not codes:
            self._release(key)
        session = self.operators[key[1]].session if key[0] == "op" else self.users.get(key[1])
        if session is not None:
            try:
                await session.unsubscribe(trade_tr(code), code)
            except Exception as exc:  # noqa: BLE001 -- the slot is ours again either way
                log.warning("unsubscribing a symbol failed", extra={"code": code, "error": type(exc).__name__})

    # -- events --------------------------------------------------------------------------------------------
    def _listen(self, key: SessionKey, session: RealtimeClient) -> None:
        known = self._listening.get(key)
        if known is not None and known[0] is session:
            return
        if known is not None:  # a new session on the key (the old one closed): the old one is not heard any more
            known[1]()
        self._listening[key] = (session, session.add_listener(lambda event: self._on_session_event(key, event)))

    def _on_session_event(self, key: SessionKey, event: Event) -> None:
        """Each session's drop and return are the engines' (their gap opens at the first drop; each return
        has the symbols' next trades judged for what they missed). A session carrying none of the feed's
        symbols leaves no gap."""
        if type(event) in TRADES:
            self._emit(event)
        elif isinstance(event, Disconnected) and self._on.get(key):
            self._down.add(key)
            self._emit(event)
        elif isinstance(event, Reconnected) and key in self._down:
            self._down.discard(key)
            self._emit(event)

    def _release(self, key: SessionKey) -> None:
        """``key``'s session carries none of the feed's symbols any more (moved, left, closed): if it dropped
        with them, the Reconnected it owes is sent now (it may never come: a closed session, a dead key)."""
        if key in self._down:
            self._down.discard(key)
            self._emit(Reconnected(0))

    def _session_closed(self, user_id: int) -> None:
        """A user's session was closed (:meth:`UserSessions.close`: fill notices let go, a replica gave it up):
        its listener goes, and what it carried is placed again at the next rebalance (the user's next session,
        or elsewhere; their key is asked for again)."""
        key: SessionKey = ("user", user_id)
        known = self._listening.pop(key, None)
        if known is not None:
            known[1]()
        codes = self._on.pop(key, set())
        self._release(key)
        if codes:
            self._own.pop(user_id, None)
            self._dirty.update(codes)
            self._wake.set()

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("feed listener failed")

    # -- figures -------------------------------------------------------------------------------------------
    def placement(self, code: str) -> Placement | None:
        return self._placed.get(code)

    def polled_every(self, code: str) -> int | None:
        """Seconds between two polls of ``code`` if it is polled, else None."""
        placement = self._placed.get(code)
        if placement is None or placement.kind != "poll":
            return None
        return self._pollers[placement.operator].every()

    def carried_by(self, key: SessionKey) -> set[str]:
        return set(self._on.get(key, set()))

    def capacity(self) -> FeedCapacity:
        polled = sum(1 for placement in self._placed.values() if placement.kind == "poll")
        user_sessions = sum(1 for key, codes in self._on.items() if key[0] == "user" and codes)
        return FeedCapacity(
            operator_sessions=len(self.operators), user_sessions=user_sessions, registered_users=self._registered,
            slots_used=sum(len(codes) for codes in self._on.values()),
            slots_total=sum(op.session.max_subscriptions for op in self.operators)
            + self._registered * self._user_room(),
            symbols=len(self._placed), polled=polled,
            poll_every=max((poller.every() for poller in self._pollers), default=0))
