"""The alert engine: armed thresholds in an :class:`AlertBook`, fed by trade ticks.

* Alerts live in the database; at start-up the armed ones are loaded (grouped per symbol and side
  by the database, each side sorted into the book once), cooling ones re-armed when due, and every symbol with an alert is subscribed
  once on the market-data feed (the real-time client counts references per symbol). What users do
  to their alerts (add, delete, pause) is stored by :mod:`chatbot.alerts.repository`; the engine is
  told (:meth:`AlertEngine.arm`, :meth:`~AlertEngine.disarm`, :meth:`~AlertEngine.pause`,
  :meth:`~AlertEngine.resume`) and moves only what the market moves.
* A tick is checked against the book on the event loop (O(log n + fired)); crossed alerts leave
  the book at once and go to a worker that fires them in transactions of at most
  :data:`FIRE_CHUNK` alerts: each moves its alerts from ``armed`` to ``fired`` (or ``cooling`` for a
  repeat alert) *and* writes their :class:`~chatbot.alerts.notices.AlertFired` notices to the
  outbox. The conditional update makes firing exactly-once across restarts and reconnects. Bounded chunks
  keep a storm (thousands crossed by one tick) from holding the event loop or the database in one long
  transaction; a storm's remainder waits apart from fresh crossings, which go first, in chunks of their own
  (not padded with the storm's rest), so other alerts do not wait for it. Up to :data:`FIRE_PIPELINE`
  chunks of each are in flight at a time: on SQLite queued on the driver's thread, which takes a fresh
  chunk before the storm's not yet begun (a fresh crossing waits for the transaction in progress only) and
  goes from one to the next without waiting for the event loop; the outbox rows are built by SQLite
  (:mod:`chatbot.alerts.fire_sqlite`). On PostgreSQL a chunk is one statement on an autocommit
  connection of its own (one round trip: the UPDATE feeds the outbox INSERT), side by side with the others.
* After a feed gap the book still holds every armed threshold, so the first tick after the
  reconnect fires whatever its price has crossed; and since a crossing can revert before the feed
  is back, that first tick's day high and low (with their times, fields 8/27 and 9/30) fire the
  alerts whose threshold an extreme made during the gap reached, provided they were armed before
  it was made. Alerts armed since the gap began are noted per symbol as they arrive, with the
  second they were armed in (an extreme in that same second may have preceded them: they wait for
  a later crossing), so this costs O(log n) per symbol, not a pass over every armed alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import BigInteger, bindparam, case, cast, text, type_coerce, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, func, select

from chatbot import tasks
from chatbot.alerts import fire_sqlite, outbox
from chatbot.alerts.book import AlertBook
from chatbot.alerts.feeds import AlertFeed, trade_tr
from chatbot.alerts.gap import RECENT_ARMS, FeedGap, market_second
from chatbot.alerts.notices import AlertFired
from chatbot.alerts.outbox import Push
from chatbot.alerts.repository import Side, armed_sides, armed_since
from chatbot.kis.frames import Tick
from chatbot.kis.models import KST
from chatbot.kis.overseas_frames import UsTick
from chatbot.kis.realtime import Event
from chatbot.markets.money import Currency, price_units
from chatbot.storage.db import Database, is_transient_lock
from chatbot.storage.tables import AlertRow
from chatbot.storage.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)
FIRE_CHUNK = 100  # alerts fired per transaction: bounds the loop's work and the lock time per commit
FIRE_PIPELINE = 2  # chunks in flight at a time, of fresh crossings and of a storm's rest each (SQLite: queued)
LANE_RUN = 16  # SQLite: transactions per hold of the write lock before the bot's other writers get a turn
# The book keeps thresholds as integers in the currency's price units (whole won; 1/10,000 dollar): a tick
# is compared with plain ints on the hot path, and the database does the conversion while it reads (a KRW
# threshold is stored as a whole number, so the cast is exact and the load costs no Decimal per row).
# Rounded, not truncated: SQLite keeps a fractional dollar price as a REAL, and 1.13 × 10,000 is 11,299.999…
THRESHOLD_UNITS = cast(func.round(col(AlertRow.threshold) * case(
    *((col(AlertRow.currency) == c.value, c.price_units) for c in Currency if c.price_units != 1), else_=1)),
    BigInteger).label("threshold")
_BOOK_COLUMNS = (col(AlertRow.id), col(AlertRow.code), col(AlertRow.direction), THRESHOLD_UNITS)
# A storm fires thousands of rows in one statement: their prices are read as the driver gives them (no
# Decimal per value), then checked whole (KRW notices carry whole won; a fraction raises, never truncates).
_RAW_THRESHOLD = type_coerce(col(AlertRow.threshold), BigInteger).label("threshold")
_RAW_REFERENCE = type_coerce(col(AlertRow.reference_price), BigInteger).label("reference_price")


Chunk = list[tuple[int, "Crossing"]]  # (alert id, the crossing it came with)
AlertIds = list[int]
Fired = tuple[int, set[str]]  # a committed chunk: how many it fired, the symbols they were on (or more)
BookEntry = tuple[Any, str, str, int]  # (alert id, code, direction, threshold) as read from the database


@dataclass(slots=True)
class Crossing:
    """The alerts one tick crossed, waiting to be fired (``ids`` shrinks as chunks commit)."""

    ids: list[int]
    code: str
    price: int
    tick_time: str
    seen_at: float  # perf_counter when the tick arrived
    size: int = 0  # alerts the tick crossed

    def __post_init__(self) -> None:
        self.size = len(self.ids)


class AlertEngine:
    def __init__(self, db: Database, feed: AlertFeed, wake_sender: Callable[[], None], *,
                 rearm_interval: float = 1.0, fire_chunk: int = FIRE_CHUNK) -> None:
        self.db = db
        self.feed = feed
        self.wake_sender = wake_sender
        self.rearm_interval = rearm_interval
        self.fire_chunk = fire_chunk
        self.book = AlertBook()
        # Start-up on SQLite: the book's read, begun by Runtime.start ahead of time so its query runs on
        # the driver's thread while the start does other work; taken by the first start (_load_book).
        self.early_book: asyncio.Future[tuple[list[Side], set[str]]] | None = None
        self._subscribed: set[str] = set()
        self._pending: deque[Crossing] = deque()  # fresh crossings waiting for the fire worker, oldest first
        self._rest: deque[Crossing] = deque()  # what is left of crossings too large for one chunk, oldest first
        self._work = asyncio.Event()  # set when _pending gets something
        self._wakeup: asyncio.Future[None] | None = None  # the pipelined worker's wait for a commit or a crossing
        self._idle = asyncio.Event()  # set while nothing is pending or being committed
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._remove_listener: Callable[[], None] | None = None
        self._gap = FeedGap()
        # alert -> (when it was stored, epoch seconds; its symbol): those this process did not see armed (loaded as
        # stored lately, adopted), set aside again by any gap assumed from before their storing (see assume_gap)
        self._stored_at: dict[int, tuple[float, str]] = {}
        # code -> (alert, KST second it was armed) for the alerts armed since the gap began
        self._arming: dict[str, list[int]] = {}  # code -> [high, low, arms in progress] seen while arming
        self.fired = 0
        self.backlog = 0  # crossed alerts not yet committed
        self.latencies: list[float] = []  # tick seen → fire + push committed (seconds), for benchmarks
        self.record_latencies = False
        self.fire_on_driver = db.is_sqlite  # False: through SQLAlchemy (PostgreSQL; the anchor in bench.alerts)
        self._binds = fire_sqlite.Binds.of(db.engine.dialect)
        self.pipeline = FIRE_PIPELINE  # fire transactions in flight at a time, of fresh crossings and of a storm's rest
        self._one_statement = db.engine.dialect.name == "postgresql"  # False: the reference path (tests)
        self._fire_connections: list[AsyncConnection] = []  # PostgreSQL: idle autocommit ones chunks fire on
        # Told of every symbol whose watchers may have changed (the feed planner re-reads them).
        self.demand_changed: Callable[[str], None] = lambda code: None

    # -- lifecycle --------------------------------------------------------------------------------------
    async def start(self, since: float | None = None) -> None:
        """Load the book, start the feed and subscribe every symbol. ``since`` (epoch seconds): the feed was
        unwatched since then (a restart from the feed's last stamp, a feed taken over from a replica last seen
        alive then): a gap from then, the alerts armed after it judged from their own arming (see assume_gap)."""
        self._remove_listener = self.feed.add_listener(self._on_event)
        # The feed's sessions and planning, and the book, at once: each mostly waits for its own query.
        feed = asyncio.create_task(self.feed.start(), name="alert-feed-start")
        try:
            codes = await self._load_book(since)
        except BaseException:
            await tasks.cancel(feed)
            raise
        await feed  # its failure is raised as it was
        # All at once: each waits for its own acknowledgement (one after the other, 40 round trips).
        await asyncio.gather(*(self._ensure_subscribed(code) for code in sorted(codes)))
        self._tasks = [asyncio.create_task(self._fire_worker(), name="alert-fire"),
                       asyncio.create_task(self._rearm_loop(), name="alert-rearm")]
        if since is not None:
            self.assume_gap(since)
        log.info("alert engine started", extra={"armed": len(self.book), "symbols": len(self._subscribed)})

    async def _load_book(self, since: float | None) -> set[str]:
        """Armed alerts into the book (grouped per symbol and side by the database, each side sorted
        once: :func:`~chatbot.alerts.repository.armed_sides`); the symbols of every armed or cooling alert."""
        early, self.early_book = self.early_book, None
        sides, codes = await early if early is not None else await armed_sides(self.db, THRESHOLD_UNITS)
        # Those stored since the gap assumed from ``since`` began (a restart's, from the feed's last stamp: as
        # long ago as the feed was down then), or lately when it is not known yet (a gap assumed later): an
        # extreme made between its start and their arming must not fire them (soak: "fired uncrossed").
        stored = dt.datetime.fromtimestamp(time.time() - RECENT_ARMS if since is None else since, dt.UTC)
        for alert_id, code, armed in await armed_since(self.db, stored):  # last (re-)armed, not created
            self._stored_at[alert_id] = (armed.timestamp(), code)
        if self._gap.start is None and not len(self.book):
            self.book.load_sides(sides)
        else:  # a feed taken over during a gap, or a book already holding alerts: noted as armed now
            self._add_many([(i, code, direction, t) for code, direction, ids, thresholds in sides
                            for i, t in zip(ids, thresholds, strict=True)])
        return codes

    async def stop(self, grace: float = 5.0) -> None:
        """Stop; alerts already crossed get up to ``grace`` seconds to be fired first (those that do
        not stay armed in the database and fire on the next crossing after a restart)."""
        if self._tasks and not self._idle.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        connections, self._fire_connections = self._fire_connections, []
        for conn in connections:
            with contextlib.suppress(Exception):
                await conn.close()
        if self._remove_listener is not None:
            self._remove_listener()
        await self.feed.aclose()

    # -- the hot path -------------------------------------------------------------------------------------
    def _add(self, alert_id: int, code: str, direction: str, threshold: int) -> None:
        self.book.add(alert_id, code, direction, threshold)
        self._gap.note_armed(code, alert_id, _kst_second())  # (also without a gap: one noticed late, see FeedGap)

    def _add_many(self, alerts: Sequence[BookEntry]) -> None:
        added = self.book.add_many(alerts)
        if self._gap.start is not None and added:
            code_of = {a[0]: a[1] for a in alerts}
            now = _kst_second()
            for alert_id in added:
                self._gap.note_armed(code_of[alert_id], alert_id, now)

    def _on_event(self, event: Event) -> None:
        if type(event) is UsTick:  # HDFSCNT0: a US trade, keyed DNASAAPL, dollars as ten-thousandths
            self._on_us_tick(event)
            return
        if type(event) is not Tick:
            self._gap.on_event(event, self._subscribed)
            return
        code = event[0]
        if code not in self._subscribed:
            return
        price = int(event[2])
        arming = self._arming.get(code)
        if arming is not None:
            arming[0], arming[1] = max(arming[0], price), min(arming[1], price)
        fired = self.book.on_price(code, price)
        if code in self._gap.symbols:
            fired += self._gap_extremes(code, event)
        self._gap.saw(code, event)
        if fired:
            self._enqueue(Crossing(fired, code, price, event[1], time.perf_counter()))

    def _on_us_tick(self, tick: UsTick) -> None:
        """A US trade against the book (US alerts hold thresholds in ten-thousandths of a dollar, keyed
        by the realtime key). HDFSCNT0 carries no times of the day's extremes: after a gap only the
        crossing by a trade fires (no extremes check)."""
        key = tick[0]
        if key not in self._subscribed:
            return
        price = units_of_price(tick.price)
        arming = self._arming.get(key)
        if arming is not None:
            arming[0], arming[1] = max(arming[0], price), min(arming[1], price)
        fired = self.book.on_price(key, price)
        if key in self._gap.symbols:
            self._gap.forget(key)
        if fired:
            self._enqueue(Crossing(fired, key, price, tick.kst_time, time.perf_counter()))

    def _enqueue(self, crossing: Crossing) -> None:
        self._pending.append(crossing)
        self.backlog += crossing.size
        self._idle.clear()
        self._work.set()
        self._poke()

    def _gap_extremes(self, code: str, tick: Tick) -> list[int]:
        """Alerts crossed by the day's high or low made while the feed was down (first tick after a gap)."""
        new_high, new_low = self._gap.unseen_extremes(code, tick)
        gap_start, armed_since = self._gap.take(code)
        if gap_start is None:
            return []
        since = market_second(gap_start)
        # An alert armed during the gap is set aside unless the extreme on its side was made in a
        # later second than the alert was armed in (the times have one-second resolution: an extreme
        # in the same second may have come before the alert, and a crossing before it is no crossing).
        late = [(alert_id, where) for alert_id, armed_at in armed_since
                if (where := self.book.where(alert_id)) is not None
                and (tick.high_time if where[1] == "above" else tick.low_time) <= armed_at
                and self.book.remove(alert_id)]
        fired: list[int] = []
        if tick.high_time >= since and new_high:
            fired += self.book.on_high(code, tick.high)
        if tick.low_time >= since and new_low:
            fired += self.book.on_low(code, tick.low)
        for alert_id, (_code, direction, threshold) in late:
            self.book.add(alert_id, code, direction, threshold)
        return fired

    # The gap's state, as the storm tests look at it.
    @property
    def _gap_start(self) -> float | None:
        return self._gap.start

    @property
    def _gap_symbols(self) -> set[str]:
        return self._gap.symbols

    @property
    def _armed_in_gap(self) -> dict[str, list[tuple[int, str]]]:
        return self._gap.armed

    # -- firing -------------------------------------------------------------------------------------------
    def _take(self, limit: int) -> Chunk:
        """Up to ``limit`` crossed alerts: the fresh crossings first, oldest first (a chunk of them alone:
        a tick's few alerts are not held back by a storm's); only when none is waiting, the remainder of a
        crossing too large for one chunk (a storm). A crossing larger than what is left of the chunk is
        split: its remainder goes behind the remainders already waiting, so those of several storms take
        turns (a crossing of a few hundred alerts during a 10,000-alert storm is not held until it drained)."""
        chunk: Chunk = []
        source = self._pending if self._pending else self._rest
        while source and len(chunk) < limit:
            crossing = source.popleft()
            room = limit - len(chunk)
            if len(crossing.ids) <= room:
                chunk.extend((alert_id, crossing) for alert_id in crossing.ids)
                crossing.ids = []
            else:
                chunk.extend((alert_id, crossing) for alert_id in crossing.ids[:room])
                crossing.ids = crossing.ids[room:]
                self._rest.append(crossing)  # behind the others: several storms' remainders take turns
        return chunk

    async def _fire_worker(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while self._pending or self._rest:
                if self.pipeline > 1 and (self.fire_on_driver or self._one_statement):
                    await self._fire_pipelined()
                    continue
                chunk = self._take(self.fire_chunk)
                await self._fire_or_rearm(chunk)
                await asyncio.sleep(0)  # ticks, replies and other work run between chunks
            self._idle.set()

    async def _fire_or_rearm(self, chunk: Chunk) -> None:
        try:
            await self._fire(chunk)
        except Exception:
            log.exception("could not record fired alerts; re-arming them", extra={"alerts": len(chunk)})
            with contextlib.suppress(Exception):
                await self._rearm_after_failure([alert_id for alert_id, _ in chunk])
        finally:
            self.backlog -= len(chunk)

    async def _fire(self, chunk: Chunk) -> None:
        now = utcnow()
        prices = {alert_id: crossing for alert_id, crossing in chunk}
        if self.fire_on_driver:  # SQLite: the whole transaction in one round trip to the driver's thread
            fired = await self.db.write_on_driver(partial(fire_sqlite.fire_on_driver, prices, now, self._binds))
        elif self._one_statement:  # PostgreSQL: one statement, its own transaction: one round trip
            fired = await self._fire_in_one_statement(prices, now)
        else:
            async with self.db.write_connection() as conn:  # fire a chunk (alerts + outbox), one transaction
                rows = await fire_alerts(conn, prices, now)
                fired = len(rows), {row[4] for row in rows}
        await self._committed(chunk, fired)

    def _poke(self, *_: Any) -> None:
        """Wake the pipelined worker (a transaction done, or a crossing queued)."""
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _fire_pipelined(self) -> None:
        """Fire what is pending with up to :attr:`pipeline` transactions of fresh crossings and as many of
        a storm's remainder in flight at a time, each chunk submitted the moment it is taken (a crossing that
        comes meanwhile is taken at once, in a chunk of its own: see :meth:`_take`). On SQLite they queue on
        the driver's thread (:meth:`Database.driver_lane`), a fresh chunk ahead of the storm's not yet begun,
        so the thread goes on without waiting for the event loop and a fresh crossing waits only for the
        transaction in progress; at most :data:`LANE_RUN` per hold of the write lock (the bot's other writers
        get their turn between runs). On PostgreSQL each runs on an autocommit connection of its own (a fresh
        chunk does not wait for a storm's statements at all). A chunk that meets another process's SQLite lock
        is fired again through :meth:`Database.write_on_driver`, which waits for that lock; any other failure
        re-arms it."""
        again: list[Chunk] = []
        if self.fire_on_driver:
            try:
                async with self.db.driver_lane() as submit:
                    def on_driver(chunk: Chunk, urgent: bool) -> asyncio.Future[Any]:
                        prices = {alert_id: crossing for alert_id, crossing in chunk}
                        return submit(partial(fire_sqlite.fire_on_driver, prices, utcnow(), self._binds), urgent)

                    await self._run_pipeline(on_driver, LANE_RUN, again)
            except Exception:  # the lane itself failed (its connection): its chunks go the one-at-a-time way
                log.exception("fire lane failed")
                if not again and (self._pending or self._rest):
                    again.append(self._take(self.fire_chunk))  # progress: fired or re-armed below
        else:
            def on_connection(chunk: Chunk, urgent: bool) -> asyncio.Future[Any]:
                return asyncio.ensure_future(self._fire_in_one_statement(
                    {alert_id: crossing for alert_id, crossing in chunk}, utcnow()))

            await self._run_pipeline(on_connection, 4 * LANE_RUN, again)
        for chunk in again:
            await self._fire_or_rearm(chunk)

    async def _run_pipeline(self, submit: Callable[[Chunk, bool], asyncio.Future[Any]], run: int,
                            again: list[Chunk]) -> None:
        in_flight: dict[asyncio.Future[Any], tuple[Chunk, bool]] = {}
        fresh = stored = submitted = 0
        try:
            while True:
                while submitted < run:
                    if self._pending:
                        if fresh >= self.pipeline:
                            break
                        urgent = True
                    elif self._rest and stored < self.pipeline:
                        urgent = False
                    else:
                        break
                    chunk = self._take(self.fire_chunk)
                    future = submit(chunk, urgent)
                    future.add_done_callback(self._poke)
                    in_flight[future] = (chunk, urgent)
                    submitted += 1
                    fresh, stored = fresh + urgent, stored + (not urgent)
                if not in_flight:
                    return
                done = [future for future in in_flight if future.done()]
                if not done:
                    self._wakeup = asyncio.get_running_loop().create_future()
                    try:
                        await self._wakeup
                    finally:
                        self._wakeup = None
                    continue
                for future in done:
                    chunk, urgent = in_flight.pop(future)
                    fresh, stored = fresh - urgent, stored - (not urgent)
                    await self._settle(chunk, future, again)
        except BaseException:
            # The conditional fire makes a rerun safe; a statement cancelled here is settled as any failed one.
            if in_flight:
                await asyncio.wait(in_flight)
                for future, (chunk, _) in in_flight.items():
                    if future.cancelled():
                        again.append(chunk)
                    else:
                        await self._settle(chunk, future, again)
            raise

    async def _settle(self, chunk: Chunk, future: asyncio.Future[Any], again: list[Chunk]) -> None:
        """A pipelined chunk's transaction ended: committed, fired again later (another process's SQLite lock)
        or re-armed."""
        try:
            fired = future.result()
        except Exception as exc:
            if self.fire_on_driver and is_transient_lock(exc):  # another process's lock: again, waiting for it
                again.append(chunk)
                return
            log.exception("could not record fired alerts; re-arming them", extra={"alerts": len(chunk)})
            with contextlib.suppress(Exception):
                await self._rearm_after_failure([alert_id for alert_id, _ in chunk])
            self.backlog -= len(chunk)
            return
        try:
            await self._committed(chunk, fired)
        except Exception:
            log.exception("fired alerts committed; what follows failed", extra={"alerts": len(chunk)})
        finally:
            self.backlog -= len(chunk)

    async def _committed(self, chunk: Chunk, fired: Fired) -> None:
        """A chunk's transaction committed (``fired``: how many it fired; the symbols they were on, or more)."""
        committed = time.perf_counter()
        if self.record_latencies:
            self.latencies.extend(committed - crossing.seen_at for _, crossing in chunk)
        count, codes = fired
        self.fired += count
        if count:
            self.wake_sender()
            for code in codes:
                await self._release_if_unused(code)

    async def _fire_in_one_statement(self, crossings: dict[int, Crossing], now: dt.datetime) -> Fired:
        """PostgreSQL: :func:`fire_alerts` is one statement, atomic on its own, so it runs on a connection of
        the engine's in autocommit: one round trip per chunk (a pooled transaction cost four: the pool's
        ping, BEGIN, the statement, COMMIT). Chunks in flight side by side each take a connection of their
        own (up to :attr:`pipeline` kept for the next ones). A connection that fails is dropped (the next
        chunk opens one); a commit in doubt is settled as any failed chunk is: what is still armed is
        re-armed. Returns how many fired and their symbols."""
        if self._fire_connections:
            conn = self._fire_connections.pop()
        else:
            conn = await self.db.engine.connect()
            try:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            except BaseException:
                await conn.close()
                raise
        try:
            rows = await fire_alerts(conn, crossings, now)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        if len(self._fire_connections) < self.pipeline:
            self._fire_connections.append(conn)
        else:  # more in flight than are kept: back to the pool (the engine holds no more than it needs)
            with contextlib.suppress(Exception):
                await conn.close()
        return len(rows), {row[4] for row in rows}

    async def _rearm_after_failure(self, alert_ids: AlertIds) -> None:
        """Put back the alerts of a chunk whose commit failed (those still armed in the database)."""
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(
                core_select(*_BOOK_COLUMNS)
                .where(col(AlertRow.id).in_(alert_ids), col(AlertRow.status) == "armed"))).all()
        for code in {r[1] for r in rows}:
            await self._ensure_subscribed(code)  # its symbol may have left the feed meanwhile
        self._add_many([(r[0], r[1], r[2], r[3]) for r in rows])

    async def _rearm_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rearm_interval)
            try:
                await self.rearm_due()
            except Exception:
                log.exception("re-arming failed")

    async def rearm_due(self) -> int:
        """Repeat alerts whose cooldown is over go back in the book (one conditional UPDATE)."""
        now = utcnow()
        async with self.db.write_connection() as conn:  # cooling → armed
            rows = (await conn.execute(
                update(AlertRow)
                .where(col(AlertRow.status) == "cooling", col(AlertRow.rearm_at) <= now)
                .values(status="armed", rearm_at=None, updated_at=now)
                .returning(*_BOOK_COLUMNS))).all()
        self._add_many([(r[0], r[1], r[2], r[3]) for r in rows])
        return len(rows)

    # -- subscriptions ------------------------------------------------------------------------------------
    async def _ensure_subscribed(self, code: str) -> None:
        if code not in self._subscribed:
            await self.feed.subscribe(trade_tr(code), code)
            self._subscribed.add(code)

    def _in_use(self, code: str) -> bool:
        """Armed in the book, crossed and not yet fired (a failed commit puts it back), or an alert on
        it being armed right now (stored but not yet in the book)."""
        return bool(self.book.count(code) or code in self._arming
                    or any(crossing.code == code for queue in (self._pending, self._rest) for crossing in queue))

    async def _release_if_unused(self, code: str) -> None:
        self.demand_changed(code)
        if self._in_use(code):
            return
        async with self.db.session() as session:
            cooling = (await session.exec(select(func.count()).select_from(AlertRow).where(
                col(AlertRow.code) == code, col(AlertRow.status) == "cooling"))).one()
        if not cooling and code in self._subscribed and not self._in_use(code):  # checked again: that read awaited
            self._subscribed.discard(code)
            self._gap.forget(code)
            await self.feed.unsubscribe(trade_tr(code), code)

    def has_capacity_for(self, code: str) -> bool:
        return code in self._subscribed or len(self.feed.subscriptions) < self.feed.max_subscriptions

    # -- alerts coming and going (their rows: chatbot.alerts.repository) ----------------------------------------
    async def arm(self, row: AlertRow, store: Callable[[AlertRow], Awaitable[AlertRow]]) -> AlertRow:
        """Store a new alert with ``store`` and put it in the book (subscribing its symbol first).

        The alert exists from the moment its symbol's ticks reach the engine; ticks seen while it is
        being stored are remembered (high and low), so a crossing in that instant still fires it."""
        # Noted before anything is awaited: while an arm is in progress its symbol stays on the feed
        # (the last armed alert on it may fire or be deleted meanwhile; see _release_if_unused).
        code = row.code
        arming = self._arming.setdefault(code, [0, 2**62, 0])
        arming[2] += 1
        try:
            await self._ensure_subscribed(code)
            row = await store(row)
            assert row.id is not None
            high, low = arming[0], arming[1]
            threshold = price_units(row.threshold, row.currency)
            self._add(row.id, row.code, row.direction, threshold)
        except Exception:
            self._arm_done(code, arming)
            with contextlib.suppress(Exception):  # nothing was armed: the symbol leaves the feed if unused
                await self._release_if_unused(code)
            raise
        except BaseException:
            self._arm_done(code, arming)
            raise
        self._arm_done(code, arming)
        crossed = high >= threshold if row.direction == "above" else low <= threshold
        if crossed and self.book.remove(row.id):
            price = high if row.direction == "above" else low
            self._enqueue(Crossing([row.id], row.code, price, _kst_second(), time.perf_counter()))
        return row

    def _arm_done(self, code: str, arming: list[int]) -> None:
        arming[2] -= 1
        if not arming[2]:
            self._arming.pop(code, None)

    async def disarm(self, alert_id: int, code: str) -> None:
        """An alert left its active states (deleted): out of the book, its symbol off the feed if unused."""
        self.book.remove(alert_id)
        await self._release_if_unused(code)

    def pause(self, alert_ids: Sequence[int]) -> None:
        """Alerts paused (their user blocked the bot): out of the book; their symbols stay subscribed."""
        for alert_id in alert_ids:
            self.book.remove(alert_id)

    async def resume(self, alerts: Sequence[BookEntry]) -> None:
        """Alerts armed again (id, code, direction, threshold): their symbols subscribed, into the book."""
        for code in {alert[1] for alert in alerts}:
            await self._ensure_subscribed(code)
        self._add_many(alerts)

    # -- replicas (chatbot.service.replicas): alerts armed elsewhere, a feed taken over -----------------------
    async def adopt(self, alerts: Sequence[BookEntry], stored: Sequence[float]) -> list[int]:
        """Alerts another replica armed (``stored``: when each was, epoch seconds, in step): their symbols
        subscribed, into the book, and the first tick of each symbol checks the day's high and low made
        since the earliest, as after a feed gap (a crossing before this replica knew of them is not missed);
        each is judged only by the extremes made from its own arming (judged from the earliest on its symbol,
        an alert armed later fired on a high made before it existed). Returns the ids added (those already in
        the book are skipped)."""
        for code in sorted({alert[1] for alert in alerts}):
            await self._ensure_subscribed(code)
        added = self.book.add_many(alerts)
        if added:
            new = set(added)
            mine = [(at, alert[1], alert[0]) for alert, at in zip(alerts, stored, strict=True) if alert[0] in new]
            for at, code, alert_id in mine:
                self._stored_at[alert_id] = (at, code)
            self.assume_gap(min(at for at, _, _ in mine), {code for _, code, _ in mine})
        return added

    def cross(self, alert_id: int, price: int) -> bool:
        """Fire an alert of the book as crossed at ``price`` by a tick seen before it reached the book (an
        alert adopted from another replica). False when it is not in the book (fired, or gone)."""
        where = self.book.where(alert_id)
        if where is None or not self.book.remove(alert_id):
            return False
        self._enqueue(Crossing([alert_id], where[0], price, _kst_second(), time.perf_counter()))
        return True

    def unwatched_since(self) -> float | None:
        """When the feed's open gap began (some symbol's first trade since is still to come), else None."""
        return self._gap.start

    def assume_gap(self, since: float, codes: set[str] | None = None) -> None:
        """Treat the feed of ``codes`` (every subscribed symbol if None) as down since ``since``: the first
        tick of each fires the alerts its day high or low crossed after then (a feed taken over from a
        replica that died). Those known to be armed after ``since`` (loaded at start-up, adopted) are set aside
        from the extremes made before their arming: again at every gap assumed (an alert adopted, its symbol's
        first trade since taken, then one stored earlier adopted on it: the gap reopened from the earlier
        storing judged the first from there), on every symbol when the open gap's start moves back."""
        start = self._gap.start
        begin = since if start is None else min(start, since)
        covered = None if start is not None and since < start else codes  # None: every symbol
        gone = []
        for alert_id, (at, code) in self._stored_at.items():
            if alert_id not in self.book:  # fired, deleted, paused: judged no more
                gone.append(alert_id)
            elif at >= begin and (covered is None or code in covered):
                self._gap.remember_armed(at, code, alert_id)
        for alert_id in gone:
            del self._stored_at[alert_id]
        self._gap.assume(begin, self._subscribed if codes is None else codes & self._subscribed)


def units_of_price(price: Decimal) -> int:
    """A US price as the book counts it: whole ten-thousandths of a dollar."""
    return int((price * 10_000).to_integral_value())


def _kst_second() -> str:
    """Now as KIS stamps a trade (HHMMSS, Korean time)."""
    return dt.datetime.now(KST).strftime("%H%M%S")


# PostgreSQL fires a chunk in one statement (one round trip, no per-row work on the event loop): the
# conditional UPDATE of the alerts still armed (repeat alerts get their re-arm time in it) feeds the
# outbox INSERT, whose payload is built by the server as AlertFired.payload() builds it. A threshold is
# given in the currency's price units (whole won, checked whole like fire_sqlite.units: a fraction makes
# the cast of a non-number fail, and the chunk with it; 1/10,000 dollar). Returns what fire_alerts'
# reference path returns, code fifth (the engine reads it).
_PG_UNITS = ("CASE WHEN {c} IS NULL THEN NULL WHEN a.currency = 'USD' THEN ({c} * 10000)::bigint "
             "WHEN {c} = trunc({c}) THEN {c}::bigint ELSE CAST('not whole: ' || {c} AS bigint) END")
_PG_FIRE = text(
    "WITH crossed AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:prices AS bigint[]), "
    "CAST(:times AS text[])) AS c(id, price, tick_time)), "
    "fired AS (UPDATE alerts AS a SET status = CASE WHEN a.repeat THEN 'cooling' ELSE 'fired' END, "
    "fired_count = a.fired_count + 1, updated_at = :now, "
    "rearm_at = CASE WHEN a.repeat THEN :now + a.cooldown_seconds * interval '1 second' ELSE a.rearm_at END "
    "FROM crossed AS c WHERE a.id = c.id AND a.status = 'armed' "
    "RETURNING a.id, a.owner_id, a.chat_id, a.language, a.code, a.name, a.direction, "
    f"{_PG_UNITS.format(c='a.threshold')} AS threshold, a.percent, a.repeat, a.cooldown_seconds, a.fired_count, "
    f"{_PG_UNITS.format(c='a.reference_price')} AS reference_price, a.currency, c.price, c.tick_time), "
    "pushed AS (INSERT INTO outbox (dedupe_key, owner_id, chat_id, kind, status, attempts, created_at, payload) "
    "SELECT 'alert:' || id || ':' || fired_count, owner_id, chat_id, :kind, 'pending', 0, :created, "
    "json_build_object('alert_id', id, 'lang', language, 'code', code, 'name', name, 'direction', direction, "
    "'threshold', threshold, 'price', price, 'time', tick_time, 'percent', percent, 'repeat', repeat, "
    "'reference_price', reference_price, 'currency', currency) FROM fired ORDER BY id) "
    "SELECT id, owner_id, chat_id, language, code, name, direction, threshold, percent, repeat, cooldown_seconds, "
    "fired_count, reference_price, currency FROM fired"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("created", type_=UTCDateTime()))


async def fire_alerts(conn: AsyncConnection, crossings: dict[int, Crossing], now: dt.datetime) -> list[Any]:
    """Fire crossed alerts inside the caller's transaction: a conditional UPDATE … RETURNING moves
    exactly the alerts still armed (exactly once, whatever else fires them: a restart, a reconnect,
    a second crossing), and their pushes go into the outbox alongside. Returns the fired rows.

    PostgreSQL's path, in one statement (:data:`_PG_FIRE`). SQLite runs the same transaction in one
    round trip to its driver's thread (:func:`chatbot.alerts.fire_sqlite.fire_on_driver`). The
    statements below (any other dialect; SQLite through SQLAlchemy) are the reference both follow: a
    change here is a change in both (``tests/test_alert_storms.py`` compares the rows each writes with
    the reference's)."""
    if conn.dialect.name == "postgresql":
        ids = list(crossings)
        return list((await conn.execute(_PG_FIRE, {
            "ids": ids, "prices": [crossings[i].price for i in ids], "times": [crossings[i].tick_time for i in ids],
            "now": now, "created": utcnow(), "kind": AlertFired.KIND})).all())
    return await _fire_reference(conn, crossings, now)


async def _fire_reference(conn: AsyncConnection, crossings: dict[int, Crossing], now: dt.datetime) -> list[Any]:
    fired: list[Any] = list((await conn.execute(
        update(AlertRow)
        .where(col(AlertRow.id).in_(list(crossings)), col(AlertRow.status) == "armed")
        .values(status=case((col(AlertRow.repeat), "cooling"), else_="fired"),
                fired_count=AlertRow.fired_count + 1, updated_at=now)
        .returning(*(col(c) for c in (
            AlertRow.id, AlertRow.owner_id, AlertRow.chat_id, AlertRow.language, AlertRow.code, AlertRow.name,
            AlertRow.direction)), _RAW_THRESHOLD, *(col(c) for c in (
            AlertRow.percent, AlertRow.repeat, AlertRow.cooldown_seconds, AlertRow.fired_count)), _RAW_REFERENCE,
            col(AlertRow.currency))
        )).all())
    cooldowns: dict[int, list[int]] = {}
    pushes = []
    for (alert_id, owner, chat, language, code, name, direction, threshold, percent, repeat, cooldown,
         count, reference, currency) in fired:
        crossing = crossings[alert_id]
        if repeat:
            cooldowns.setdefault(cooldown, []).append(alert_id)
        pushes.append(Push(f"alert:{alert_id}:{count}", owner, chat, AlertFired(
            alert_id, language, code, name, direction, fire_sqlite.units(threshold, currency), crossing.price,
            crossing.tick_time, percent, repeat, None if reference is None else fire_sqlite.units(reference, currency),
            currency)))
    for cooldown, ids in cooldowns.items():
        await conn.execute(update(AlertRow).where(col(AlertRow.id).in_(ids))
                           .values(rearm_at=now + dt.timedelta(seconds=cooldown)))
    await outbox.enqueue(conn, pushes, keys_are_new=True)  # the fire count moved above: every key is new
    return fired
