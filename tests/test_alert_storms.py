"""The alert engine under bursts, driven tick by tick (a stand-in feed, the real database):
bounded fire transactions, exactly-once through chunking and failures, a storm not holding back
later crossings, the feed-gap check without a pass over the book, and bulk book building."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlmodel import col, func, select

from chatbot.alerts import engine as engine_module
from chatbot.alerts import fire_sqlite
from chatbot.alerts.book import AlertBook
from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.repository import AlertRepository
from chatbot.kis import protocol as p
from chatbot.kis.frames import Tick
from chatbot.kis.models import KST
from chatbot.kis.realtime import Disconnected, Reconnected
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow, OutboxRow
from chatbot.storage.types import utcnow

CODE, OTHER = "005930", "000660"


class StandInFeed:
    """What the engine uses of :class:`RealtimeClient`; events are handed in by the test."""

    max_subscriptions = 41

    def __init__(self) -> None:
        self.listeners: list[Callable[[Any], None]] = []
        self.subscriptions: dict[tuple[str, str], int] = {}
        self.connected = asyncio.Event()
        self.last_heard: float | None = None  # (frames are emitted by the test: nothing is heard late)

    def add_listener(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    async def start(self) -> None:
        self.connected.set()

    async def aclose(self) -> None:
        self.connected.clear()

    async def subscribe(self, tr_id: str, code: str) -> None:
        self.subscriptions[(tr_id, code)] = 1

    async def unsubscribe(self, tr_id: str, code: str) -> None:
        self.subscriptions.pop((tr_id, code), None)

    def emit(self, event: Any) -> None:
        for listener in list(self.listeners):
            listener(event)


def tick(code: str, price: int, *, time: str = "100000", high: int | None = None, high_time: str = "090000",
         low: int | None = None, low_time: str = "090000") -> Tick:
    fields = ["0"] * len(p.TRADE_FIELDS)
    fields[0], fields[1], fields[2] = code, time, str(price)
    fields[8], fields[9] = str(high if high is not None else price), str(low if low is not None else price)
    fields[27], fields[30] = high_time, low_time
    return Tick(fields)


async def store_alerts(db: Database, specs: list[tuple[str, str, int]], repeat: bool = False) -> list[int]:
    now = utcnow()
    rows = [{"owner_id": 1 + i % 7, "chat_id": 1 + i % 7, "language": "ko", "code": code, "name": code,
             "direction": direction, "threshold": threshold, "reference_price": 70_000, "percent": None,
             "repeat": repeat, "cooldown_seconds": 600, "status": "armed", "fired_count": 0, "created_at": now,
             "updated_at": now} for i, (code, direction, threshold) in enumerate(specs)]
    async with db.engine.begin() as conn:
        for i in range(0, len(rows), 2000):
            await conn.execute(insert(AlertRow), rows[i:i + 2000])
    async with db.session() as session:
        return list((await session.exec(select(AlertRow.id).order_by(col(AlertRow.id)))).all())[-len(specs):]


async def count(db: Database, table: type, *where: Any) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(table).where(*where))).one()


async def settled(engine: AlertEngine, timeout: float = 30.0) -> None:
    await asyncio.wait_for(engine._idle.wait(), timeout)


@pytest.fixture
async def feed() -> StandInFeed:
    return StandInFeed()


@pytest.fixture
async def make_engine(database: Database, feed: StandInFeed) -> AsyncIterator[Callable[..., Any]]:
    engines: list[AlertEngine] = []

    async def make(**kwargs: Any) -> AlertEngine:
        engine = AlertEngine(database, feed, lambda: None, rearm_interval=3600, **kwargs)  # type: ignore[arg-type]
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.stop()


def patch_fire(monkeypatch: pytest.MonkeyPatch, before: Callable[[dict[int, Any]], None],
               after: Callable[[], None] = lambda: None) -> None:
    """Wrap the engine's fire step on either path (SQLite: run on the driver's thread; PostgreSQL:
    through SQLAlchemy): ``before(crossings)`` is called first, ``after()`` once the rows are written
    (inside the transaction: raising there rolls it back)."""
    real_fire, real_on_driver = engine_module.fire_alerts, fire_sqlite.fire_on_driver

    async def through_sqlalchemy(conn: Any, crossings: dict[int, Any], now: Any) -> list[Any]:
        before(crossings)
        fired = await real_fire(conn, crossings, now)
        after()
        return fired

    def on_driver(crossings: dict[int, Any], now: Any, binds: Any, cursor: Any) -> list[Any]:
        before(crossings)
        fired = real_on_driver(crossings, now, binds, cursor)
        after()
        return fired

    monkeypatch.setattr(engine_module, "fire_alerts", through_sqlalchemy)
    monkeypatch.setattr(fire_sqlite, "fire_on_driver", on_driver)


async def test_a_storm_fires_in_bounded_transactions_exactly_once(database: Database, feed: StandInFeed,
                                                                  make_engine: Callable[..., Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await store_alerts(database, [(CODE, "above", 70_000 + i % 50) for i in range(1_000)]
                             + [(OTHER, "below", 50_000)])
    engine: AlertEngine = await make_engine(fire_chunk=64)
    assert len(engine.book) == len(ids)
    transactions: list[int] = []
    with_later_crossing: list[int] = []

    def counting(crossings: dict[int, Any]) -> None:
        if any(c.size == 1 for c in crossings.values()):
            with_later_crossing.append(len(transactions))
        transactions.append(len(crossings))

    patch_fire(monkeypatch, counting)
    real_take, taken = engine._take, []

    def take(limit: int) -> Any:
        chunk = real_take(limit)
        taken.append(any(crossing.size == 1 for _, crossing in chunk))
        return chunk

    monkeypatch.setattr(engine, "_take", take)
    engine.record_latencies = True
    feed.emit(tick(CODE, 70_100))  # crosses all 1,000 at once
    feed.emit(tick(OTHER, 49_000))  # a later crossing on another symbol
    feed.emit(tick(CODE, 70_200))  # nothing left to cross
    await settled(engine)
    monkeypatch.undo()
    assert max(transactions) <= 64 and sum(transactions) == 1_001
    assert engine.fired == 1_001 and engine.backlog == 0
    assert await count(database, AlertRow, col(AlertRow.status) == "fired") == 1_001
    assert await count(database, OutboxRow) == 1_001
    # The later crossing was not held behind the storm's remainder: its chunk was the second taken, and on
    # SQLite (one thread, urgent first) the second transaction. On PostgreSQL chunks in flight side by side
    # each get a connection of their own and begin in whatever order those come (one still connecting while
    # a storm chunk runs on a connection just handed back): when it began is the machine's, not the queue's.
    assert len(with_later_crossing) == 1 and taken.count(True) == 1 and taken.index(True) == 1
    if database.is_sqlite:
        assert with_later_crossing[0] == 1


async def test_a_crossing_during_a_storm_waits_for_the_transaction_in_progress_only(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A storm's chunks are in flight (the first held open here) when another symbol's alert is crossed: on
    SQLite its chunk runs next, ahead of the storm's chunks already queued on the driver's thread; on
    PostgreSQL it fires on a connection of its own while the storm's statement is still held."""
    await store_alerts(database, [(CODE, "above", 70_000 + i % 50) for i in range(1_000)] + [(OTHER, "below", 50_000)])
    engine: AlertEngine = await make_engine(fire_chunk=64)
    order: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def hold_the_first(crossings: dict[int, Any]) -> None:  # SQLite: on the driver's thread
        order.append(next(iter(crossings.values())).code)
        if len(order) == 1:
            entered.set()
            assert release.wait(30)

    if database.is_sqlite:
        patch_fire(monkeypatch, hold_the_first)
    else:
        real_fire, released = engine_module.fire_alerts, asyncio.Event()

        async def held(conn: Any, crossings: dict[int, Any], now: Any) -> list[Any]:
            order.append(next(iter(crossings.values())).code)
            if len(order) == 1:
                entered.set()
                await released.wait()
            return await real_fire(conn, crossings, now)

        monkeypatch.setattr(engine_module, "fire_alerts", held)
    feed.emit(tick(CODE, 70_100))  # crosses 1,000: the first chunk is held, the next ones queue
    await asyncio.wait_for(asyncio.to_thread(entered.wait, 30), 35)
    await asyncio.sleep(0.05)  # the worker queues the storm's next chunks meanwhile
    feed.emit(tick(OTHER, 49_000))
    if database.is_sqlite:
        while engine._pending:  # taken and queued, behind the held one
            await asyncio.sleep(0.001)
        release.set()
    else:
        async def other_fired() -> None:
            while not await count(database, AlertRow, col(AlertRow.code) == OTHER, col(AlertRow.status) == "fired"):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(other_fired(), 30)  # while the storm's first statement is held
        released.set()
    await settled(engine)
    monkeypatch.undo()
    assert engine.fired == 1_001 and await count(database, OutboxRow) == 1_001
    if database.is_sqlite:  # (PostgreSQL: the storm's later statements run meanwhile, in any number)
        assert order.index(OTHER) == 1


async def test_two_storms_remainders_take_turns(database: Database, feed: StandInFeed,
                                               make_engine: Callable[..., Any]) -> None:
    """A crossing of a few hundred alerts during a larger storm is not held until the storm has drained:
    the remainders of both take turns (chunks as taken, in order)."""
    await store_alerts(database, [(CODE, "above", 70_000 + i % 50) for i in range(1_000)]
                       + [(OTHER, "below", 50_000 - i % 50) for i in range(200)])
    engine: AlertEngine = await make_engine(fire_chunk=64)
    taken: list[str] = []
    take = engine._take

    def noting(limit: int) -> Any:
        chunk = take(limit)
        taken.append(chunk[0][1].code)
        return chunk

    engine._take = noting  # type: ignore[method-assign]
    feed.emit(tick(CODE, 70_100))
    feed.emit(tick(OTHER, 49_000))
    await settled(engine)
    assert engine.fired == 1_200
    last_other = len(taken) - 1 - taken[::-1].index(OTHER)
    assert last_other < 8  # OTHER's 4 chunks alternate with CODE's, not after CODE's 16


async def test_a_failed_chunk_is_rearmed_and_fires_once_later(database: Database, feed: StandInFeed,
                                                              make_engine: Callable[..., Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    await store_alerts(database, [(CODE, "above", 70_000 + i) for i in range(100)])
    engine: AlertEngine = await make_engine(fire_chunk=30)
    calls = 0

    def note(_crossings: dict[int, Any]) -> None:
        nonlocal calls
        calls += 1

    def fail_the_second() -> None:
        if calls == 2:
            raise OSError("disk full")  # written, then the transaction fails: rolled back

    def fail_the_second_first(crossings: dict[int, Any]) -> None:
        note(crossings)
        if calls == 2:
            raise OSError("connection lost")  # PostgreSQL's one statement commits itself: it fails before

    if database.is_sqlite:
        patch_fire(monkeypatch, note, fail_the_second)
    else:
        patch_fire(monkeypatch, fail_the_second_first)
    feed.emit(tick(CODE, 70_200))
    await settled(engine)
    assert engine.fired == 70 and len(engine.book) == 30  # the failed chunk is back in the book
    assert await count(database, OutboxRow) == 70
    feed.emit(tick(CODE, 70_300))  # the next crossing fires them, once
    await settled(engine)
    monkeypatch.undo()
    assert engine.fired == 100 and len(engine.book) == 0
    async with database.session() as session:
        keys = list((await session.exec(select(OutboxRow.dedupe_key))).all())
    assert len(keys) == len(set(keys)) == 100


async def test_crossings_pending_at_stop_are_fired_before_it_returns(database: Database,
                                                                      feed: StandInFeed) -> None:
    await store_alerts(database, [(CODE, "above", 70_000 + i % 10) for i in range(500)])
    engine = AlertEngine(database, feed, lambda: None, fire_chunk=50)  # type: ignore[arg-type]
    await engine.start()
    feed.emit(tick(CODE, 70_100))
    await engine.stop()
    assert await count(database, AlertRow, col(AlertRow.status) == "fired") == 500
    assert await count(database, OutboxRow) == 500
    again = AlertEngine(database, feed, lambda: None)  # type: ignore[arg-type]
    await again.start()  # a restart: nothing left armed, nothing fires twice
    feed.emit(tick(CODE, 70_200))
    await again.stop()
    assert len(again.book) == 0 and await count(database, OutboxRow) == 500


async def test_feed_gap_fires_on_extremes_and_sets_aside_alerts_armed_since(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any]) -> None:
    before_ids = await store_alerts(database, [(CODE, "above", 71_000), (CODE, "below", 69_000),
                                               (OTHER, "above", 200_000)])
    engine: AlertEngine = await make_engine()
    feed.emit(tick(CODE, 70_000, time="100000"))
    feed.emit(Disconnected("test"))
    during = AlertRow(owner_id=9, chat_id=9, code=CODE, name=CODE, direction="above", threshold=70_500,
                      reference_price=70_000)
    await engine.arm(during, AlertRepository(database).add)  # armed while the feed is down
    ((noted, armed_at),) = engine._armed_in_gap[CODE]
    assert noted == during.id and list(engine._armed_in_gap) == [CODE]
    feed.emit(Reconnected(1))
    # First tick after the gap: the price is back at 70,000 but the day's high (made during the gap,
    # after it began, in the second the alert was armed: maybe before it) reached 71,500 and the low 68,500.
    feed.emit(tick(CODE, 70_000, time="100500", high=71_500, high_time=armed_at, low=68_500, low_time=armed_at))
    await settled(engine)
    async with database.session() as session:
        statuses = {row.id: row.status for row in (await session.exec(select(AlertRow))).all()}
    assert statuses[before_ids[0]] == "fired" and statuses[before_ids[1]] == "fired"
    assert statuses[during.id] == "armed" and during.id in engine.book  # did not exist when the high was made
    assert CODE not in engine._gap_symbols and engine._gap_start is not None  # OTHER's first tick is to come
    feed.emit(tick(OTHER, 150_000, time="100501"))
    assert engine._gap_start is None and not engine._armed_in_gap and not engine._gap_symbols
    feed.emit(tick(CODE, 70_600))  # an ordinary crossing fires the alert armed during the gap
    await settled(engine)
    assert engine.fired == 3


async def test_a_drop_noticed_late_is_a_gap_from_when_the_server_was_last_heard(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any]) -> None:
    """A silent drop is found by the ping timeout, up to 40 s after the last frame: the day's high made in
    between (unseen) crossed the alert, and the gap judged from the drop's discovery missed it."""
    (alert_id,) = await store_alerts(database, [(CODE, "above", 71_000)])
    engine: AlertEngine = await make_engine()
    heard = time.time() - 40
    feed.emit(Disconnected("ConnectionClosedError", last_heard=heard))
    feed.emit(Reconnected(1))
    unseen = dt.datetime.fromtimestamp(heard + 20, KST).strftime("%H%M%S")
    feed.emit(tick(CODE, 70_000, time=dt.datetime.now(KST).strftime("%H%M%S"), high=71_500, high_time=unseen))
    await settled(engine)
    async with database.session() as session:
        assert (await session.get(AlertRow, alert_id)).status == "fired"  # type: ignore[union-attr]
    assert engine.fired == 1


async def test_gap_bookkeeping_ends_when_a_symbol_leaves_the_feed(database: Database, feed: StandInFeed,
                                                                  make_engine: Callable[..., Any]) -> None:
    (only,) = await store_alerts(database, [(OTHER, "above", 200_000)])
    await store_alerts(database, [(CODE, "above", 80_000)])
    engine: AlertEngine = await make_engine()
    feed.emit(Disconnected("test"))
    feed.emit(Reconnected(1))
    feed.emit(tick(CODE, 70_000))
    assert engine._gap_symbols == {OTHER}
    deleted = await AlertRepository(database).delete(1, only)
    assert deleted is not None
    await engine.disarm(only, deleted.code)  # OTHER's last alert goes: its symbol leaves the feed
    assert engine._gap_start is None and not engine._gap_symbols


async def test_start_up_loads_only_armed_alerts_and_subscribes_cooling_symbols(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any]) -> None:
    ids = await store_alerts(database, [(CODE, "above", 75_000 + i) for i in range(3_000)]
                             + [(OTHER, "below", 1_000)])
    async with database.engine.begin() as conn:
        await conn.execute(AlertRow.__table__.update().where(  # type: ignore[attr-defined]
            AlertRow.__table__.c.id == ids[-1]).values(status="cooling"))  # type: ignore[attr-defined]
    engine: AlertEngine = await make_engine()
    assert len(engine.book) == 3_000 and engine.book.count(OTHER) == 0
    assert set(engine._subscribed) == {CODE, OTHER}
    assert sorted(engine.book.on_price(CODE, 75_009)) == ids[:10]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["above", "below"]), st.integers(1, 60)), max_size=120),
       st.lists(st.integers(1, 60), max_size=20), st.integers(0, 3), st.randoms(use_true_random=False))
def test_bulk_built_book_matches_brute_force(alerts: list[tuple[str, int]], prices: list[int], batches: int,
                                             rng: random.Random) -> None:
    """Built by load/add_many in batches (merging into sides already holding alerts) or one by one,
    the book fires exactly what a brute-force scan would."""
    book = AlertBook()
    live: dict[int, tuple[str, int]] = {}
    pending = list(enumerate(alerts))
    rng.shuffle(pending)
    cut = sorted(rng.randrange(len(pending) + 1) for _ in range(batches)) if pending else []
    start = 0
    for end in [*cut, len(pending)]:
        group = pending[start:end]
        start = end
        if rng.random() < 0.3:
            for i, (direction, threshold) in group:
                book.add(i, "X", direction, threshold)
        else:
            book.add_many([(i, "X", direction, threshold) for i, (direction, threshold) in group])
        live.update({i: a for i, a in group})
        if rng.random() < 0.5 and prices:
            px = prices.pop()
            expected = {i for i, (d, th) in live.items() if (d == "above" and px >= th) or (d == "below" and px <= th)}
            assert set(book.on_price("X", px)) == expected
            for i in expected:
                del live[i]
    for px in prices:
        expected = {i for i, (d, th) in live.items() if (d == "above" and px >= th) or (d == "below" and px <= th)}
        assert set(book.on_price("X", px)) == expected
        for i in expected:
            del live[i]
    assert len(book) == len(live)
    for i in list(live):
        assert book.remove(i)
    assert len(book) == 0 and book.count("X") == 0


async def test_symbol_stays_on_the_feed_while_an_alert_on_it_is_being_armed(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any]) -> None:
    """The last alert on a symbol leaves (fired or deleted) while a new one on the same symbol is
    being stored: the symbol must stay subscribed, or the new alert never sees a tick (a soak miss)."""
    (leaving,) = await store_alerts(database, [(CODE, "above", 80_000)])
    engine: AlertEngine = await make_engine()
    repository = AlertRepository(database)
    storing, stored = asyncio.Event(), asyncio.Event()

    async def slow_store(row: AlertRow) -> AlertRow:  # the insert waits on a busy database
        storing.set()
        await stored.wait()
        return await repository.add(row)

    arriving = AlertRow(owner_id=9, chat_id=9, code=CODE, name=CODE, direction="above", threshold=70_500,
                        reference_price=70_000)
    arming = asyncio.create_task(engine.arm(arriving, slow_store))
    await asyncio.wait_for(storing.wait(), 30)
    deleted = await repository.delete(1, leaving)
    assert deleted is not None
    await engine.disarm(leaving, CODE)  # the symbol's last armed alert goes while the new one is stored
    stored.set()
    await asyncio.wait_for(arming, 30)
    assert (p.WS_TRADE, CODE) in feed.subscriptions and arriving.id in engine.book
    feed.emit(tick(CODE, 70_600))
    await settled(engine)
    assert engine.fired == 1
    assert await count(database, AlertRow, col(AlertRow.id) == arriving.id, col(AlertRow.status) == "fired") == 1


async def test_gap_extreme_made_after_an_alert_armed_during_the_gap_fires_it(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any]) -> None:
    """Armed while the feed is down, crossed by a high made a later second and reverted before the
    feed is back: the first tick's day high fires it (it was crossed after it existed)."""
    engine: AlertEngine = await make_engine()
    feed.emit(Disconnected("test"))
    during = AlertRow(owner_id=9, chat_id=9, code=CODE, name=CODE, direction="above", threshold=70_500,
                      reference_price=70_000)
    await engine.arm(during, AlertRepository(database).add)
    ((_, armed_at),) = engine._armed_in_gap[CODE]
    later = (dt.datetime.strptime(armed_at, "%H%M%S") + dt.timedelta(seconds=1)).strftime("%H%M%S")
    feed.emit(Reconnected(1))
    feed.emit(tick(CODE, 70_000, time=later, high=70_600, high_time=later))
    await settled(engine)
    assert engine.fired == 1
    assert await count(database, AlertRow, col(AlertRow.id) == during.id, col(AlertRow.status) == "fired") == 1


async def test_sqlite_fires_on_the_driver_writing_what_sqlalchemy_writes(tmp_path: Any) -> None:
    """The one-round-trip SQLite fire path and the SQLAlchemy path (PostgreSQL's) leave the same rows."""
    written = []
    for on_driver in (True, False):
        db = Database(f"sqlite:///{tmp_path}/{on_driver}.sqlite3")
        await db.migrate()
        feed = StandInFeed()
        await store_alerts(db, [(CODE, "above", 70_000 + i) for i in range(150)])
        await store_alerts(db, [(CODE, "below", 69_000 - i) for i in range(40)], repeat=True)
        engine = AlertEngine(db, feed, lambda: None, rearm_interval=3600, fire_chunk=64)  # type: ignore[arg-type]
        assert engine.fire_on_driver  # SQLite's default
        engine.fire_on_driver = on_driver
        await engine.start()
        feed.emit(tick(CODE, 70_100, time="100001"))
        feed.emit(tick(CODE, 68_980, time="100002"))
        await settled(engine)
        await engine.stop()
        async with db.engine.connect() as conn:
            alerts = (await conn.exec_driver_sql(
                "SELECT id, status, fired_count, typeof(updated_at), length(updated_at), typeof(rearm_at), "
                "length(rearm_at), round((julianday(rearm_at) - julianday(updated_at)) * 86400), "
                "substr(rearm_at, 20) = substr(updated_at, 20) "
                "FROM alerts ORDER BY id")).all()
            pushes = (await conn.exec_driver_sql(
                "SELECT dedupe_key, owner_id, chat_id, kind, status, attempts, typeof(created_at), "
                "length(created_at), payload, last_error, sent_at FROM outbox ORDER BY dedupe_key")).all()
        async with db.session() as session:
            repeats = list((await session.exec(select(AlertRow).where(col(AlertRow.repeat)))).all())
        await db.dispose()
        assert engine.fired == 122 and len(pushes) == 122  # 101 above, 21 repeat alerts below
        assert all(a.status == "cooling" and a.rearm_at == a.updated_at + dt.timedelta(seconds=600)
                   for a in repeats if a.fired_count)
        # The payload is the same JSON value (SQLite's json_object writes it without Python's spaces).
        written.append((alerts, [(*push[:8], json.loads(push[8]), *push[9:]) for push in pushes]))
    assert written[0] == written[1]


async def test_postgres_fires_in_one_statement_writing_what_the_reference_writes(
        database: Database, feed: StandInFeed, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's one-statement fire (payload built by the server) and the reference statements
    (engine._fire_reference) leave the same rows (on SQLite both are the reference: a smoke run)."""
    await store_alerts(database, [(CODE, "above", 70_000 + i) for i in range(150)])
    await store_alerts(database, [(CODE, "below", 69_000 - i) for i in range(40)], repeat=True)
    written = []
    for reference in (False, True):
        if reference:
            monkeypatch.setattr(engine_module, "fire_alerts", engine_module._fire_reference)
        async with database.engine.begin() as conn:
            await conn.execute(sqlalchemy.delete(OutboxRow))
            await conn.execute(sqlalchemy.update(AlertRow).values(status="armed", fired_count=0, rearm_at=None))
        engine = AlertEngine(database, feed, lambda: None, rearm_interval=3600, fire_chunk=64)  # type: ignore[arg-type]
        engine.fire_on_driver = False
        await engine.start()
        feed.emit(tick(CODE, 70_100, time="100001"))
        feed.emit(tick(CODE, 68_980, time="100002"))
        await settled(engine)
        await engine.stop()
        async with database.engine.connect() as conn:
            alerts = [(a.id, a.status, a.fired_count, a.rearm_at and round((a.rearm_at - a.updated_at).total_seconds()))
                      for a in (await conn.execute(sqlalchemy.select(AlertRow).order_by(col(AlertRow.id)))).all()]
            pushes = [(o.dedupe_key, o.owner_id, o.chat_id, o.kind, o.status, o.attempts, o.payload, o.last_error,
                       o.sent_at) for o in (await conn.execute(
                           sqlalchemy.select(OutboxRow).order_by(col(OutboxRow.dedupe_key)))).all()]
        assert engine.fired == 122 and len(pushes) == 122  # 101 above, 21 repeat alerts below
        assert sum(a[3] == 600 for a in alerts) == 21
        written.append((alerts, pushes))
    assert written[0] == written[1]
    first = next(push[6] for push in written[0][1] if push[6]["threshold"] == 70_000)
    assert first == {"alert_id": first["alert_id"], "lang": "ko", "code": CODE, "name": CODE, "direction": "above",
                     "threshold": 70_000, "price": 70_100, "time": "100001", "percent": None, "repeat": False,
                     "reference_price": 70_000, "currency": "KRW"}


async def test_a_dollar_alert_fires_with_its_prices_in_ten_thousandths(database: Database) -> None:
    """US alerts keep dollars in the database; the pushed notice carries 1/10,000 dollars (the
    one-statement PostgreSQL path converts them on the server, as fire_sqlite.units does)."""
    now = utcnow()
    async with database.engine.begin() as conn:
        await conn.execute(insert(AlertRow), [{
            "owner_id": 1, "chat_id": 1, "language": "en", "code": "DNASAAPL", "name": "Apple", "direction": "above",
            "threshold": Decimal("1.13"), "reference_price": Decimal("1.1"), "currency": "USD", "percent": "+3",
            "repeat": False, "cooldown_seconds": 600, "status": "armed", "fired_count": 0, "created_at": now,
            "updated_at": now}])
    async with database.session() as session:
        alert_id = (await session.exec(select(AlertRow.id))).one()
    crossing = engine_module.Crossing([alert_id], "DNASAAPL", 11_400, "093001", 0.0)
    async with database.write_connection() as conn:
        fired = await engine_module.fire_alerts(conn, {alert_id: crossing}, utcnow())
    assert [row[4] for row in fired] == ["DNASAAPL"]
    async with database.session() as session:
        payload = (await session.exec(select(OutboxRow.payload))).one()
    assert payload == {"alert_id": alert_id, "lang": "en", "code": "DNASAAPL", "name": "Apple", "direction": "above",
                       "threshold": 11_300, "price": 11_400, "time": "093001", "percent": "+3", "repeat": False,
                       "reference_price": 11_000, "currency": "USD"}


async def test_an_alert_armed_after_the_server_was_last_heard_is_not_fired_by_an_extreme_made_before_it(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any]) -> None:
    """The gap of a drop noticed late starts when the server was last heard; an alert armed in between (the
    connection silently dead, the drop not yet noticed) did not exist when the day's high of that stretch
    was made, and must not fire on it (it was not set aside: the gap had not begun when it was armed)."""
    engine: AlertEngine = await make_engine()
    heard = time.time() - 40
    during = AlertRow(owner_id=9, chat_id=9, code=CODE, name=CODE, direction="above", threshold=70_500,
                      reference_price=70_000)
    await engine.arm(during, AlertRepository(database).add)  # the drop is not noticed yet
    feed.emit(Disconnected("ConnectionClosedError", last_heard=heard))
    feed.emit(Reconnected(1))
    before_it = dt.datetime.fromtimestamp(heard + 10, KST).strftime("%H%M%S")
    feed.emit(tick(CODE, 70_000, time=dt.datetime.now(KST).strftime("%H%M%S"), high=71_500, high_time=before_it))
    await settled(engine)
    async with database.session() as session:
        assert (await session.get(AlertRow, during.id)).status == "armed"  # type: ignore[union-attr]
    assert engine.fired == 0 and during.id in engine.book
    feed.emit(tick(CODE, 70_600))  # a crossing after it was armed fires it
    await settled(engine)
    assert engine.fired == 1


async def test_a_high_seen_live_before_an_alert_was_armed_does_not_fire_it_after_a_drop(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the soak ("fired without crossing"): the day's high was made and seen live, the price fell
    back, an alert was armed just under that high, and the feed dropped, all in one second. The first tick
    after the gap carried that high, timed in the gap's first second (one-second resolution): it was taken
    for an extreme of the gap and fired the alert, though it came before the alert existed and the engine
    had seen it live."""
    heard = time.time()
    second = dt.datetime.fromtimestamp(heard, KST).strftime("%H%M%S")
    monkeypatch.setattr(engine_module, "_kst_second", lambda: second)  # armed in that second
    await store_alerts(database, [(CODE, "above", 90_000)])  # keeps the symbol on the feed
    engine: AlertEngine = await make_engine()
    feed.emit(tick(CODE, 71_500, time=second, high=71_500, high_time=second))  # the day's high, seen live
    feed.emit(tick(CODE, 70_000, time=second, high=71_500, high_time=second))
    after = AlertRow(owner_id=9, chat_id=9, code=CODE, name=CODE, direction="above", threshold=71_000,
                     reference_price=70_000)
    await engine.arm(after, AlertRepository(database).add)  # under the high already made: not crossed
    feed.emit(Disconnected("ConnectionClosedError", last_heard=heard))
    feed.emit(Reconnected(1))
    feed.emit(tick(CODE, 70_000, time=second, high=71_500, high_time=second))
    await settled(engine)
    assert after.id in engine.book and engine.fired == 0
    feed.emit(tick(CODE, 71_000, time=second, high=71_500, high_time=second))  # a crossing after it fires it
    await settled(engine)
    assert engine.fired == 1


async def test_a_restart_does_not_fire_an_alert_on_a_high_made_before_it_was_armed(
        database: Database, feed: StandInFeed, make_engine: Callable[..., Any]) -> None:
    """Found by the soak ("fired without crossing"): the market paused, the bot kept arming alerts until it
    stopped, and the restart assumed a gap from the feed's last stamp (its last trade). The first tick after
    it carried the day's high, made before those alerts were armed: it fired them, loaded into the book as
    if armed before the gap."""
    stamp = time.time() - 10  # the feed's last stamp; the high was made 5 s after it, the alert stored later
    made = dt.datetime.fromtimestamp(stamp + 5, KST).strftime("%H%M%S")
    (before,) = await store_alerts(database, [(CODE, "above", 71_000)])
    async with database.engine.begin() as conn:  # stored before the stamp: the high fires it
        await conn.execute(AlertRow.__table__.update().where(  # type: ignore[attr-defined]
            AlertRow.__table__.c.id == before).values(  # type: ignore[attr-defined]
            created_at=dt.datetime.fromtimestamp(stamp - 60, dt.UTC),
            updated_at=dt.datetime.fromtimestamp(stamp - 60, dt.UTC)))  # (armed when stored)
    (after,) = await store_alerts(database, [(CODE, "above", 71_000)])  # stored now: after the high
    engine: AlertEngine = await make_engine()
    engine.assume_gap(stamp)
    now = dt.datetime.now(KST).strftime("%H%M%S")
    feed.emit(tick(CODE, 70_000, time=now, high=71_500, high_time=made))
    await settled(engine)
    assert engine.fired == 1 and after in engine.book and before not in engine.book
    feed.emit(tick(CODE, 71_000, time=now, high=71_500, high_time=made))  # a crossing after it fires it
    await settled(engine)
    assert engine.fired == 2
