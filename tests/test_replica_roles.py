"""The pieces replicas share out work with: ownership locks, outbox rows claimed by several senders,
webhook updates taken once."""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from chatbot.alerts import outbox
from chatbot.alerts.notices import Delivered, Delivery, Notice, OrderFilled
from chatbot.alerts.outbox import OutboxSender, Push
from chatbot.kis.protocol import KST
from chatbot.service.replicas import Replicas
from chatbot.storage import Database
from chatbot.storage.leases import RUNTIME, Lease, LeaseHeld, refuse_second_sqlite_bot
from chatbot.storage.locks import OwnershipLocks
from chatbot.storage.tables import AlertRow, LeaseRow, OutboxRow
from chatbot.storage.types import utcnow


@pytest.fixture
async def second(database: Database) -> AsyncIterator[Database]:
    """Another replica's connection pool on the same database."""
    other = Database(str(database.engine.url.render_as_string(hide_password=False)))
    yield other
    await other.dispose()


async def test_a_lock_has_one_holder_and_passes_on_when_released(database: Database, second: Database) -> None:
    a, b = OwnershipLocks(database), OwnershipLocks(second)
    try:
        assert await a.take("feed:market-data")
        if database.is_sqlite:  # one process: every lock is its own
            assert await b.take("feed:market-data")
            return
        assert not await b.take("feed:market-data")
        assert await b.held_anywhere(["feed:market-data", "fills:1"]) == {"feed:market-data"}
        assert await b.take("reconcile") and not await a.take("reconcile")
        await a.close()  # a replica gone: its connection, and with it every lock
        assert await b.take("feed:market-data")
        assert await a.check()  # no connection: nothing held, nothing to lose
    finally:
        await a.close()
        await b.close()


class Recording:
    def __init__(self, name: str, seen: list[tuple[str, int, int]]) -> None:
        self.name, self.seen = name, seen

    async def deliver(self, chat_id: int, notice: Notice) -> Delivery:
        assert isinstance(notice, OrderFilled)
        self.seen.append((self.name, chat_id, notice.quantity))
        await asyncio.sleep(0.001)
        return Delivered(1)


async def test_two_senders_send_each_push_once_in_order_per_chat(database: Database, second: Database) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite serves one process: one sender")
    async with database.write() as session:
        await outbox.enqueue(session, [Push(f"k{i}", 1, 100 + i % 5, OrderFilled(
            "en", "1", "005930", "Samsung", "buy", i + 1, 70_000, "090000")) for i in range(60)])
    seen: list[tuple[str, int, int]] = []

    async def noop(owner_id: int) -> None:
        return None

    senders = [OutboxSender(database), OutboxSender(second)]
    for n, sender in enumerate(senders):
        sender.notifier, sender.on_blocked = Recording(f"s{n}", seen), noop
    sent = await asyncio.gather(*(s.drain() for s in senders))
    while sum(sent) < 60:
        more = await asyncio.gather(*(s.drain() for s in senders))
        assert sum(more) > 0
        sent = [a + b for a, b in zip(sent, more, strict=True)]
    assert sum(sent) == 60 and len(seen) == 60  # none twice
    assert sorted(q for _, _, q in seen) == list(range(1, 61))
    for chat in range(100, 105):  # each chat's pushes in the order they were written
        quantities = [q for _, c, q in seen if c == chat]
        assert quantities == sorted(quantities)


async def test_an_update_is_taken_once_and_taken_over_from_a_dead_replica(database: Database) -> None:
    lease = Lease(database, RUNTIME, "bot")
    await lease.acquire()
    try:
        live, other = Replicas(database, lease.owner), Replicas(database, "elsewhere:1:1:dead")
        assert await live.first_delivery(41)
        assert not await live.first_delivery(41)  # re-sent to the same replica
        assert not await other.first_delivery(41)  # re-sent to another: the taker is alive
        assert await other.first_delivery(42)
        assert await live.first_delivery(42)  # its taker has no lease: it died before acknowledging it
        assert not await other.first_delivery(42)
    finally:
        await lease.release()


async def test_a_second_bot_process_on_sqlite_is_refused(tmp_path: Path) -> None:
    from chatbot.storage import leases

    db = Database(f"sqlite:///{tmp_path}/one.sqlite3")
    await db.migrate()
    try:
        other = os.getppid()  # a live process that is not this one stands for another bot
        owner = f"{leases.HOST}:{other}:{leases._process_start(other) or ''}:abcd"
        async with db.write() as session:
            session.add(LeaseRow(name=f"{RUNTIME}:{owner}", kind=RUNTIME, owner=owner, host=leases.HOST, pid=other,
                                 purpose="bot", acquired_at=utcnow(), expires_at=utcnow()))
        lease = Lease(db, RUNTIME, "bot")
        await lease.acquire()
        with pytest.raises(LeaseHeld, match="SQLite serves one process"):
            await refuse_second_sqlite_bot(lease)
        async with db.session() as session:  # its own row is gone again
            assert [r.pid for r in (await session.exec(select(LeaseRow))).all()] == [other]
    finally:
        await db.dispose()


async def test_the_feed_owner_fires_an_alert_armed_elsewhere_that_a_tick_crossed_before_it_knew(
        database: Database) -> None:
    """Armed on another replica, crossed by a tick that reverted before the feed's owner adopted it: fired,
    once. And the feed taken over from a dead owner: the day's high made in the gap fires what it crossed."""
    from tests.test_alert_storms import CODE, OTHER, StandInFeed, count, store_alerts, tick

    if database.is_sqlite:
        pytest.skip("SQLite serves one process: nothing is armed elsewhere")
    from chatbot.alerts.engine import AlertEngine

    feed = StandInFeed()
    engine = AlertEngine(database, feed, lambda: None, rearm_interval=3600)  # type: ignore[arg-type]
    replicas = Replicas(database, "owner", interval=3600)  # no pass but the test's: the alert is unknown until then
    replicas.feed_role(engine)
    before = await store_alerts(database, [(OTHER, "above", 60_000)])  # armed before the feed was taken over
    await replicas.start()  # takes the feed (nobody else holds it)
    try:
        assert replicas.owns("feed:market-data") and len(engine.book) == 1
        # As after a take-over from a replica last seen alive a minute ago: the high made since fires.
        engine.assume_gap(time.time() - 60)
        feed.emit(tick(OTHER, 59_000, high=60_500, high_time=datetime.datetime.now(KST).strftime("%H%M%S")))
        (armed,) = await store_alerts(database, [(CODE, "above", 71_000)])  # another replica arms one
        feed.emit(tick(CODE, 71_500))  # crosses it ...
        feed.emit(tick(CODE, 70_000))  # ... and comes back, before the owner knew of the alert
        await replicas.run_once()  # adopts it: the crossing is found among the recent ticks
        await replicas.run_once()  # seen again: fired, not adopted a second time
        await asyncio.wait_for(engine._idle.wait(), 30)  # both crossings committed
        assert await count(database, AlertRow, col(AlertRow.status) == "fired",
                           col(AlertRow.id).in_([armed, *before])) == 2
        assert await count(database, OutboxRow) == 2  # one push each
    finally:
        await replicas.stop()


async def test_the_feed_owner_adopts_an_alert_whose_commit_came_after_every_window_looked(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """An alert is stamped before its transaction commits: stored by a replica that stalled longer than the
    margin the feed owner's passes look back, it is found by the owner's periodic look at every armed alert."""
    from sqlalchemy import update

    from chatbot.service import replicas as module
    from tests.test_alert_storms import CODE, StandInFeed, store_alerts

    if database.is_sqlite:
        pytest.skip("SQLite serves one process: nothing is armed elsewhere")
    from chatbot.alerts.engine import AlertEngine

    engine = AlertEngine(database, StandInFeed(), lambda: None, rearm_interval=3600)  # type: ignore[arg-type]
    replicas = Replicas(database, "owner", interval=3600)
    replicas.feed_role(engine)
    await replicas.start()
    try:
        (late,) = await store_alerts(database, [(CODE, "above", 71_000)])
        async with database.write() as session:  # stamped ten minutes before it could be seen
            await session.exec(update(AlertRow).where(col(AlertRow.id) == late).values(
                updated_at=utcnow() - datetime.timedelta(minutes=10)))
        await replicas.run_once()
        assert engine.book.where(late) is None  # older than the window of recent alerts
        monkeypatch.setattr(module, "ADOPT_SWEEP", 0.0)
        await replicas.run_once()
        assert engine.book.where(late) is not None and CODE in engine._subscribed
        assert CODE in engine._gap_symbols  # its first tick checks the day's high since it was stored
    finally:
        await replicas.stop()


def test_a_feed_gap_begun_on_an_earlier_korean_day_covers_all_of_today() -> None:
    from chatbot.alerts.gap import market_second

    at = datetime.datetime(2026, 11, 30, 15, 0, 30, tzinfo=datetime.UTC).timestamp()  # 00:00:30 KST
    assert market_second(at - 60, at) == "000000"  # began 23:59:30 KST the day before
    assert market_second(at - 20, at) == "000010"


async def test_a_token_issued_by_another_replica_a_moment_ago_is_used_not_refused() -> None:
    """Two replicas meet a user's first command at once: KIS issues one token a minute per key
    (EGW00133 to the second); the second takes the first's from the shared store."""
    from chatbot.kis.errors import KisTokenIssueThrottled
    from chatbot.kis.token import CachedToken, MemoryTokenStore, TokenManager

    store = MemoryTokenStore()
    now = time.time()
    issued = asyncio.Event()

    async def first_issue() -> CachedToken:
        issued.set()
        await asyncio.sleep(0.3)  # saved a moment after the second replica asked KIS
        return CachedToken("from-the-first", now + 86_400, now)

    async def second_issue() -> CachedToken:
        raise KisTokenIssueThrottled("EGW00133", msg_cd="EGW00133")

    first, second = TokenManager("k", store, first_issue), TokenManager("k", store, second_issue)
    one = asyncio.create_task(first.get())
    await issued.wait()
    assert await second.get() == "from-the-first" and await one == "from-the-first"


async def test_a_standby_session_counts_subscriptions_without_connecting() -> None:
    from chatbot.kis.realtime import SubscriptionLimitError
    from chatbot.kis.standby import StandbyRealtimeClient

    async def approval() -> str:
        raise AssertionError("a session standing by asks KIS for nothing")

    client = StandbyRealtimeClient("ws://127.0.0.1:9", approval, max_subscriptions=2)
    await asyncio.wait_for(client.subscribe("H0STCNT0", "005930"), 1)  # no connection, no wait for an ack
    await client.subscribe("H0STCNT0", "005930")
    await client.subscribe("H0STCNT0", "000660")
    with pytest.raises(SubscriptionLimitError):
        await asyncio.wait_for(client.subscribe("H0STCNT0", "035420"), 1)
    assert client.subscriptions == {("H0STCNT0", "005930"): 2, ("H0STCNT0", "000660"): 1}
    await client.unsubscribe("H0STCNT0", "000660")
    assert client.standing_by and not client.connected.is_set()
    await client.aclose()


# -- conditional orders with several replicas: the database carries them to the feed's owner ---------------
async def test_a_conditional_order_armed_listed_and_cancelled_on_another_replica(db_url: str) -> None:
    """Another replica (no trigger engine: the feed is this one's) arms a stop, lists it and cancels a
    take-profit, all through the database. The feed's owner adopts the stop — a trade that crossed it and
    came back before the owner knew of it still fires it, once — and drops the cancelled one."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serves one process: no other replica")
    from chatbot.kis import protocol as p
    from chatbot.service.views import Outcome
    from chatbot.storage.tables import ConditionalOrderRow
    from tests.harness import BotHarness
    from tests.test_conditional import ALICE, CODE, TRIGGERED, buy, price, service, ticks, wait_for

    bot = BotHarness(db_url)
    await bot.start()
    other_db = Database(db_url)
    try:
        runtime = bot.runtime
        assert runtime is not None and runtime.engine is not None
        owner = service(bot)
        await wait_for(lambda: runtime.replicas.owns("feed:market-data") and owner.engine is not None)
        await buy(bot, ALICE, 10)
        # Another replica's service: its own connections, no trigger engine.
        elsewhere = conditional_orders_elsewhere(other_db, runtime)
        user = ALICE["id"]

        async def arm(kind: str, *args: str) -> int:
            card = await elsewhere.prepare(user, user, "ko", kind, [CODE, *args])
            await elsewhere.attach_card(card.token, user, 900 + len(card.token))
            armed = await elsewhere.confirm(card.token, user, 900 + len(card.token))
            assert armed.outcome is Outcome.PLACED and armed.view is not None
            return armed.view.id

        now = price(bot)
        stop, take = ticks(-2, now), ticks(5, now)
        accepted = bot.sim.orders_accepted
        engine = owner.engine
        assert engine is not None
        await runtime.engine.feed.subscribe(p.WS_TRADE, CODE)  # the feed carries the symbol already (an alert)
        async with runtime.replicas._pass_lock:  # the owner's replica pass waits: it does not know of them yet
            stop_id = await arm("stop", "6", str(stop))
            take_id = await arm("tp", "4", str(take))
            assert engine.armed(stop_id) is None and engine.armed(take_id) is None
            bot.sim.set_price(CODE, stop)  # crosses the stop ...
            await wait_for(lambda: runtime.replicas.recent_prices(CODE, 0.0)[-1:] == [price(bot)])
            bot.sim.set_price(CODE, now)  # ... and comes back
            await wait_for(lambda: runtime.replicas.recent_prices(CODE, 0.0)[-1:] == [now])
        listed = await elsewhere.active(user)  # /stops on the other replica: both, with the price now
        assert {v.id for v in listed} == {stop_id, take_id} and all(v.price is not None for v in listed)
        await wait_for(lambda: _status(other_db, stop_id, "placed"))  # adopted, crossed meanwhile: fired
        await wait_for(lambda: engine.armed(take_id) is not None)  # adopted too
        cancelled = await elsewhere.cancel(user, f"#{take_id}")
        assert cancelled.status == "cancelled"
        await wait_for(lambda: engine.armed(take_id) is None)  # dropped by the owner's next pass
        bot.sim.set_price(CODE, take)  # through the cancelled take-profit: nothing
        await wait_for(lambda: runtime.replicas.recent_prices(CODE, 0.0)[-1:] == [price(bot)])
        for _ in range(3):  # the owner's passes again: nothing adopted twice, nothing fired twice
            await runtime.replicas.run_once()
        await engine.wait_idle()
        await bot.wait_for_message(user, TRIGGERED, timeout=60)
        assert bot.count_messages(user, TRIGGERED) == 1
        assert bot.sim.orders_accepted == accepted + 1
        assert await _status(other_db, take_id, "cancelled")
        assert [v.id for v in await elsewhere.active(user)] == []
        async with other_db.session() as session:
            assert len((await session.exec(select(ConditionalOrderRow))).all()) == 2
        # Without the feed, its capacity as the database tells it: no slot left, a clear refusal, nothing stored.
        from chatbot.service.errors import UserError
        elsewhere.feed_capacity = lambda: 0
        with pytest.raises(UserError) as refused:
            await elsewhere.prepare(user, user, "ko", "stop", [CODE, "1", str(ticks(-2, price(bot)))])
        assert refused.value.key == "alert_capacity"
        async with other_db.session() as session:
            assert len((await session.exec(select(ConditionalOrderRow))).all()) == 2
    finally:
        await other_db.dispose()
        await bot.stop()


async def test_the_feed_owner_adopts_a_conditional_order_whose_commit_came_after_every_window_looked(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As for alerts: a stop is stamped (armed_at, updated_at) before its transaction commits; stored by a
    replica that stalled longer than the margin the owner's passes look back, it is found by the owner's
    periodic look at every armed order (else a stop-loss never watched), adopted once, with the gap check."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serves one process: no other replica")
    from sqlalchemy import update

    from chatbot.service import conditional as module
    from chatbot.service.views import Outcome
    from chatbot.storage.tables import ConditionalOrderRow
    from tests.harness import BotHarness
    from tests.test_conditional import ALICE, CODE, buy, price, service, ticks, wait_for

    bot = BotHarness(db_url)
    await bot.start()
    other_db = Database(db_url)
    try:
        runtime = bot.runtime
        assert runtime is not None
        owner = service(bot)
        await wait_for(lambda: runtime.replicas.owns("feed:market-data") and owner.engine is not None)
        engine = owner.engine
        assert engine is not None
        await buy(bot, ALICE, 10)
        elsewhere = conditional_orders_elsewhere(other_db, runtime)
        user = ALICE["id"]
        async with runtime.replicas._pass_lock:  # the owner's passes: only the test's
            card = await elsewhere.prepare(user, user, "ko", "stop", [CODE, "6", str(ticks(-2, price(bot)))])
            await elsewhere.attach_card(card.token, user, 901)
            armed = await elsewhere.confirm(card.token, user, 901)
            assert armed.outcome is Outcome.PLACED and armed.view is not None
            late = armed.view.id
            stamp = utcnow() - datetime.timedelta(minutes=10)
            async with other_db.write() as session:  # stamped ten minutes before it could be seen
                await session.exec(update(ConditionalOrderRow).where(col(ConditionalOrderRow.id) == late)
                                   .values(armed_at=stamp, updated_at=stamp))
            owner._swept = time.monotonic()  # the last full look: just now
            assert await owner.adopt_armed(runtime.replicas.recent_prices) == 0
            assert not engine.knows(late)  # older than the window of recent orders
            monkeypatch.setattr(module, "SWEEP_SECONDS", 0.0)
            assert await owner.adopt_armed(runtime.replicas.recent_prices) == 1
            assert engine.armed(late) is not None
            assert CODE in engine._gap.symbols  # its first trade checks the day's low since it was stored
            assert await owner.adopt_armed(runtime.replicas.recent_prices) == 0  # not twice
            assert engine.armed(late) is not None  # and not dropped as gone
    finally:
        await other_db.dispose()
        await bot.stop()


async def _status(db: Database, order_id: int, status: str) -> bool:
    from chatbot.storage.tables import ConditionalOrderRow

    async with db.session() as session:
        row = await session.get(ConditionalOrderRow, order_id)
    return row is not None and row.status == status


def conditional_orders_elsewhere(db: Database, runtime: Any) -> Any:
    """Another replica's conditional-order service: its own connections, no trigger engine."""
    from chatbot.service.cards import CardStore
    from chatbot.service.conditional import ConditionalOrders
    from chatbot.service.journal import OrderJournal, Settling

    elsewhere = ConditionalOrders(db, runtime.accounts, CardStore(db, 300), OrderJournal(db), runtime.market,
                                  runtime.mode, Settling(), process_id="replica-b")
    elsewhere.replicated, elsewhere.feed_capacity = True, lambda: 40
    return elsewhere
