"""The alert engine: armed thresholds in an :class:`AlertBook`, fed by trade ticks.

* Alerts live in the database; at start-up the armed ones are loaded, cooling ones re-armed when
  due, and every symbol with an alert is subscribed once on the market-data feed (the real-time
  client counts references per symbol).
* A tick is checked against the book on the event loop (O(log n + fired)); crossed alerts leave
  the book at once and go to a worker that, in one transaction per batch, moves each from
  ``armed`` to ``fired`` (or ``cooling`` for a repeat alert) *and* writes its push to the outbox.
  The conditional update makes firing exactly-once across restarts and reconnects.
* After a feed gap the book still holds every armed threshold, so the first tick after the
  reconnect fires whatever its price has crossed; and since a crossing can revert before the feed
  is back, that first tick's day high and low (with their times, fields 8/27 and 9/30) fire the
  alerts armed before the gap whose threshold an extreme made during the gap reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import case, insert, update
from sqlmodel import col, func, select

from chatbot.alerts.book import AlertBook
from chatbot.kis import protocol as p
from chatbot.kis.frames import Tick
from chatbot.kis.models import KST
from chatbot.kis.realtime import Disconnected, Event, RealtimeClient, Reconnected
from chatbot.storage.db import Database
from chatbot.storage.tables import AlertRow, OutboxRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)
ACTIVE = ("armed", "cooling", "paused")


@dataclass(frozen=True, slots=True)
class Fired:
    alert_id: int
    price: int
    tick_time: str
    seen_at: float  # perf_counter when the tick arrived


class AlertEngine:
    def __init__(self, db: Database, feed: RealtimeClient, wake_sender: Callable[[], None], *,
                 rearm_interval: float = 1.0) -> None:
        self.db = db
        self.feed = feed
        self.wake_sender = wake_sender
        self.rearm_interval = rearm_interval
        self.book = AlertBook()
        self._subscribed: set[str] = set()
        self._queue: asyncio.Queue[list[Fired]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._remove_listener: Callable[[], None] | None = None
        self._armed_at: dict[int, float] = {}  # alert id -> when it entered the book (wall clock)
        self._gap_start: float | None = None  # wall clock when the feed dropped
        self._gap_symbols: set[str] = set()  # symbols whose first tick after a gap is still to come
        self._arming: dict[str, list[int]] = {}  # code -> [high, low, arms in progress] seen while arming
        self.fired = 0
        self.latencies: list[float] = []  # tick seen → fire + push committed (seconds), for benchmarks
        self.record_latencies = False

    # -- lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._remove_listener = self.feed.add_listener(self._on_event)
        await self.feed.start()
        async with self.db.session() as session:
            rows = (await session.exec(select(AlertRow).where(col(AlertRow.status).in_(("armed", "cooling"))))).all()
        for row in rows:
            if row.status == "armed" and row.id is not None:
                self._add(row.id, row.code, row.direction, row.threshold)
        for code in {row.code for row in rows}:
            await self._ensure_subscribed(code)
        self._tasks = [asyncio.create_task(self._fire_worker(), name="alert-fire"),
                       asyncio.create_task(self._rearm_loop(), name="alert-rearm")]
        log.info("alert engine started", extra={"armed": len(self.book), "symbols": len(self._subscribed)})

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._remove_listener is not None:
            self._remove_listener()
        await self.feed.aclose()

    # -- the hot path -------------------------------------------------------------------------------------
    def _add(self, alert_id: int, code: str, direction: str, threshold: int) -> None:
        self.book.add(alert_id, code, direction, threshold)
        self._armed_at[alert_id] = time.time()

    def _on_event(self, event: Event) -> None:
        if type(event) is not Tick:
            if isinstance(event, Disconnected) and self._gap_start is None:
                self._gap_start = time.time()
            elif isinstance(event, Reconnected):
                self._gap_symbols = set(self._subscribed)
            return
        code = event[0]
        if code not in self._subscribed:
            return
        price = int(event[2])
        arming = self._arming.get(code)
        if arming is not None:
            arming[0], arming[1] = max(arming[0], price), min(arming[1], price)
        fired = self.book.on_price(code, price)
        if code in self._gap_symbols:
            fired += self._gap_extremes(code, event)
        for alert_id in fired:
            self._armed_at.pop(alert_id, None)
        if fired:
            seen = time.perf_counter()
            self._queue.put_nowait([Fired(alert_id, price, event[1], seen) for alert_id in fired])

    def _gap_extremes(self, code: str, tick: Tick) -> list[int]:
        """Alerts crossed by the day's high or low made while the feed was down (first tick after a gap)."""
        self._gap_symbols.discard(code)
        gap_start = self._gap_start
        if not self._gap_symbols:
            self._gap_start = None
        if gap_start is None:
            return []
        since = dt.datetime.fromtimestamp(gap_start, KST).strftime("%H%M%S")
        # Alerts armed during the gap did not exist when that extreme was made: set them aside.
        late = {a: w for a, t in self._armed_at.items()
                if t > gap_start and (w := self.book.where(a)) is not None and w[0] == code}
        for alert_id in late:
            self.book.remove(alert_id)
        fired: list[int] = []
        if tick.high_time >= since:
            fired += self.book.on_high(code, tick.high)
        if tick.low_time >= since:
            fired += self.book.on_low(code, tick.low)
        for alert_id, (_code, direction, threshold) in late.items():
            self.book.add(alert_id, code, direction, threshold)
        return fired

    async def _fire_worker(self) -> None:
        while True:
            batch = await self._queue.get()
            while not self._queue.empty():
                batch.extend(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception:
                log.exception("could not record fired alerts; re-arming them")
                await self._reload([f.alert_id for f in batch])

    async def _commit(self, batch: list[Fired]) -> None:
        """Fire a batch in one transaction: a conditional UPDATE … RETURNING moves exactly the alerts
        still armed (exactly once, whatever else fires them), and their pushes go in alongside."""
        now = utcnow()
        by_id = {f.alert_id: f for f in batch}
        async with self.db.session() as session:
            result = await session.exec(  # type: ignore[call-overload]
                update(AlertRow)
                .where(col(AlertRow.id).in_(list(by_id)), col(AlertRow.status) == "armed")
                .values(status=case((col(AlertRow.repeat), "cooling"), else_="fired"),
                        fired_count=AlertRow.fired_count + 1, updated_at=now)
                .returning(AlertRow.id, AlertRow.owner_id, AlertRow.chat_id, AlertRow.language, AlertRow.code,
                           AlertRow.name, AlertRow.direction, AlertRow.threshold, AlertRow.percent, AlertRow.repeat,
                           AlertRow.cooldown_seconds, AlertRow.fired_count, AlertRow.reference_price))
            fired = list(result.all())
            cooldowns: dict[int, list[int]] = {}
            pushes = []
            for (alert_id, owner, chat, language, code, name, direction, threshold, percent, repeat, cooldown,
                 count, reference) in fired:
                f = by_id[alert_id]
                if repeat:
                    cooldowns.setdefault(cooldown, []).append(alert_id)
                pushes.append({"dedupe_key": f"alert:{alert_id}:{count}", "owner_id": owner, "chat_id": chat,
                               "kind": "alert", "status": "pending", "attempts": 0, "created_at": now,
                               "payload": {"alert_id": alert_id, "lang": language, "code": code, "name": name,
                                           "direction": direction, "threshold": threshold, "price": f.price,
                                           "time": f.tick_time, "percent": percent, "repeat": repeat,
                                           "reference_price": reference}})
            for cooldown, ids in cooldowns.items():
                await session.exec(update(AlertRow).where(col(AlertRow.id).in_(ids))  # type: ignore[call-overload]
                                   .values(rearm_at=now + dt.timedelta(seconds=cooldown)))
            if pushes:
                await session.exec(insert(OutboxRow), params=pushes)  # type: ignore[call-overload]
            await session.commit()
        committed = time.perf_counter()
        if self.record_latencies:
            self.latencies.extend(committed - f.seen_at for f in batch)
        self.fired += len(fired)
        if fired:
            self.wake_sender()
            for code in {row[4] for row in fired}:
                await self._release_if_unused(code)

    async def _reload(self, alert_ids: list[int]) -> None:
        async with self.db.session() as session:
            for alert_id in alert_ids:
                row = await session.get(AlertRow, alert_id)
                if row is not None and row.status == "armed":
                    self._add(alert_id, row.code, row.direction, row.threshold)

    async def _rearm_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rearm_interval)
            try:
                await self.rearm_due()
            except Exception:
                log.exception("re-arming failed")

    async def rearm_due(self) -> int:
        now = utcnow()
        async with self.db.session() as session:
            rows = list((await session.exec(select(AlertRow).where(
                col(AlertRow.status) == "cooling", col(AlertRow.rearm_at) <= now))).all())
            for row in rows:
                row.status, row.rearm_at, row.updated_at = "armed", None, now
                session.add(row)
            await session.commit()
        for row in rows:
            assert row.id is not None
            self._add(row.id, row.code, row.direction, row.threshold)
        return len(rows)

    # -- subscriptions ------------------------------------------------------------------------------------
    async def _ensure_subscribed(self, code: str) -> None:
        if code not in self._subscribed:
            await self.feed.subscribe(p.WS_TRADE, code)
            self._subscribed.add(code)

    async def _release_if_unused(self, code: str) -> None:
        if self.book.count(code):
            return
        async with self.db.session() as session:
            cooling = (await session.exec(select(func.count()).select_from(AlertRow).where(
                col(AlertRow.code) == code, col(AlertRow.status) == "cooling"))).one()
        if not cooling and code in self._subscribed:
            self._subscribed.discard(code)
            await self.feed.unsubscribe(p.WS_TRADE, code)

    def has_capacity_for(self, code: str) -> bool:
        return code in self._subscribed or len(self.feed.subscriptions) < self.feed.max_subscriptions

    # -- alerts -------------------------------------------------------------------------------------------------
    async def arm(self, row: AlertRow) -> AlertRow:
        """Store a new alert and put it in the book (subscribing its symbol first).

        The alert exists from the moment its symbol's ticks reach the engine; ticks seen while it is
        being stored are remembered (high and low), so a crossing in that instant still fires it."""
        await self._ensure_subscribed(row.code)
        row.created_at = row.updated_at = utcnow()
        arming = self._arming.setdefault(row.code, [0, 2**62, 0])
        arming[2] += 1
        try:
            async with self.db.session() as session:
                session.add(row)
                await session.commit()
            assert row.id is not None
            high, low = arming[0], arming[1]
            self._add(row.id, row.code, row.direction, row.threshold)
        finally:
            arming[2] -= 1
            if not arming[2]:
                self._arming.pop(row.code, None)
        crossed = high >= row.threshold if row.direction == "above" else low <= row.threshold
        if crossed and self.book.remove(row.id):
            self._armed_at.pop(row.id, None)
            price = high if row.direction == "above" else low
            self._queue.put_nowait([Fired(row.id, price, dt.datetime.now(KST).strftime("%H%M%S"),
                                          time.perf_counter())])
        return row

    async def count_active(self, owner_id: int) -> int:
        async with self.db.session() as session:
            return (await session.exec(select(func.count()).select_from(AlertRow).where(
                col(AlertRow.owner_id) == owner_id, col(AlertRow.status).in_(ACTIVE)))).one()

    async def list(self, owner_id: int) -> list[AlertRow]:
        async with self.db.session() as session:
            return list((await session.exec(select(AlertRow).where(
                col(AlertRow.owner_id) == owner_id, col(AlertRow.status).in_(ACTIVE)).order_by(col(AlertRow.id)))).all())

    async def delete(self, owner_id: int, alert_id: int) -> AlertRow | None:
        async with self.db.session() as session:
            row = await session.get(AlertRow, alert_id)
            if row is None or row.owner_id != owner_id or row.status not in ACTIVE:
                return None
            row.status, row.updated_at = "deleted", utcnow()
            session.add(row)
            await session.commit()
        self.book.remove(alert_id)
        self._armed_at.pop(alert_id, None)
        await self._release_if_unused(row.code)
        return row

    async def _move_owner(self, owner_id: int, from_statuses: tuple[str, ...], to: str) -> list[AlertRow]:
        async with self.db.session() as session:
            rows = list((await session.exec(select(AlertRow).where(
                col(AlertRow.owner_id) == owner_id, col(AlertRow.status).in_(from_statuses)))).all())
            for row in rows:
                row.status, row.updated_at = to, utcnow()
                session.add(row)
            await session.commit()
        return rows

    async def pause_owner(self, owner_id: int) -> int:
        """The user blocked the bot: their alerts stop (paused, not deleted)."""
        rows = await self._move_owner(owner_id, ("armed", "cooling"), "paused")
        for row in rows:
            assert row.id is not None
            self.book.remove(row.id)
            self._armed_at.pop(row.id, None)
        return len(rows)

    async def resume_owner(self, owner_id: int) -> int:
        rows = await self._move_owner(owner_id, ("paused",), "armed")
        for row in rows:
            assert row.id is not None
            await self._ensure_subscribed(row.code)
            self._add(row.id, row.code, row.direction, row.threshold)
        return len(rows)
