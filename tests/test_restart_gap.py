"""A restart is a feed gap: what the price crossed while no process watched the feed fires once the bot
is back (chatbot.service.watermark). End to end: fake Bot API ↔ bot ↔ simulator, the simulator's price
moved while the bot is down; and among replicas (PostgreSQL), every one down and one coming back."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import col, select

from chatbot import tasks
from chatbot.alerts.gap import market_second
from chatbot.config import KisSettings
from chatbot.kis import protocol as p
from chatbot.kis.models import KST, OrderSide
from chatbot.service.replicas import FEED
from chatbot.service.watermark import Watermark
from chatbot.sim.server import KisSimulator
from chatbot.storage import Database
from chatbot.storage.sim_state import DbSimStateStore
from chatbot.storage.tables import AlertRow, ConditionalOrderRow, WatermarkRow
from tests.harness import BotHarness
from tests.helpers import new_credentials
from tests.test_conditional import ALICE, PLACED, TRIGGERED, arm, buy, price, rows, service, ticks, wait_for
from tests.test_feed_capacity import add_alerts, price_of, wait_until
from tests.test_replica_feeds import Replica, _count, _outbox, second, sim

ALERT_PUSH = "도달"
__all__ = ["second", "sim"]  # fixtures shared with test_replica_feeds
CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, kis=KisSettings(conditional_sync_seconds=0.2))
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


def dip_while_down(bot: BotHarness, *path: int) -> Any:
    """While the bot is down, the simulator's market trades at ``path`` (its state stored as the
    simulator stores it, so the restarted one continues from there: the day's high and low with their times)."""
    sim = bot.sim

    async def move() -> None:
        for level in path:
            sim.set_price(CODE, level)
        db = Database(bot.settings.database.url)
        try:
            await DbSimStateStore(db).save_many({"market": sim.market.snapshot()})
        finally:
            await db.dispose()
    return move


async def sells(bot: BotHarness) -> int:
    assert bot.runtime is not None
    account = await bot.runtime.accounts.for_user(ALICE["id"])
    today = dt.datetime.now(p.KST).date()
    return len(await account.client.executions(today, today, code=CODE, side=OrderSide.SELL))


async def stamp(bot: BotHarness) -> float | None:
    assert bot.runtime is not None
    return await Watermark(bot.runtime.db, FEED).read()


async def test_what_crossed_while_the_bot_was_down_fires_once_after_the_restart(bot: BotHarness) -> None:
    now = price(bot)
    await buy(bot, ALICE, 10)
    stop, level = ticks(-3, now), ticks(-2, now)
    await arm(bot, ALICE, f"/stop {CODE} 10 {stop}")
    (msg,) = await bot.say(ALICE, f"/alert {CODE} 이하 {level}")
    assert "알림 #1" in msg["text"], msg["text"]
    assert bot.runtime is not None
    await bot.runtime.replicas.run_once()  # a pass with the feed up: it is stamped as watched
    await bot.runtime.replicas.watermark.settle()  # type: ignore[union-attr]
    assert await stamp(bot) is not None
    # Down: the price dips through the alert and the stop and comes back above both before the restart.
    await bot.restart(dip_while_down(bot, ticks(-5, now), now))
    assert price(bot) == now and bot.count_messages(ALICE["id"], TRIGGERED) == 0
    bot.sim.set_price(CODE, now)  # the first trade after the restart carries the day's low, made meanwhile
    await bot.wait_for_message(ALICE["id"], ALERT_PUSH, timeout=30)
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await wait_for(lambda: _all_placed(bot))
    for _ in range(3):  # more trades, another restart: nothing fires again
        await bot.sim.tick()
    await bot.restart()
    bot.sim.set_price(CODE, now)
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], ALERT_PUSH) == 1
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    assert await sells(bot) == 1
    assert [a.status for a in await rows(bot, AlertRow)] == ["fired"]


async def _all_placed(bot: BotHarness) -> bool:
    return [r.status for r in await rows(bot, ConditionalOrderRow)] == ["placed"]


async def test_a_trailing_stops_high_made_while_down_is_not_lost(bot: BotHarness) -> None:
    now = price(bot)
    await buy(bot, ALICE, 10)
    await arm(bot, ALICE, f"/trail {CODE} 10 5%")
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.stop_price is not None and row.stop_price < now
    high = ticks(40, now)
    # Down: a new high 5% above the trail's level… and back to a price below the level that high sets.
    back = (high * 94) // 100
    assert back > row.stop_price
    await bot.restart(dip_while_down(bot, high, back))
    bot.sim.set_price(CODE, back)
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await wait_for(lambda: _all_placed(bot))
    assert await sells(bot) == 1


async def test_no_stamp_no_gap_as_before(bot: BotHarness) -> None:
    """A database with nothing stamped (new, or upgraded from before the stamps): the restart assumes no
    gap, so a dip while down fires nothing; a crossing seen after fires, once."""
    now = price(bot)
    level = ticks(-2, now)
    await bot.say(ALICE, f"/alert {CODE} 이하 {level}")
    sim_move = dip_while_down(bot, ticks(-5, now), now)

    async def unstamped() -> None:
        await sim_move()
        db = Database(bot.settings.database.url)
        try:
            async with db.write() as session:
                await session.exec(delete(WatermarkRow))  # type: ignore[call-overload]
        finally:
            await db.dispose()

    await bot.restart(unstamped)
    bot.sim.set_price(CODE, now)
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], ALERT_PUSH) == 0
    bot.sim.set_price(CODE, ticks(-3, now))
    await bot.wait_for_message(ALICE["id"], ALERT_PUSH, timeout=30)
    await asyncio.sleep(0.3)
    assert bot.count_messages(ALICE["id"], ALERT_PUSH) == 1


async def quiet(bot: BotHarness) -> None:
    """The replicas' passes from now on only those the test makes (its counts are its own)."""
    assert bot.runtime is not None
    replicas = bot.runtime.replicas
    task, replicas._task = replicas._task, None
    await tasks.cancel(task)
    assert replicas.watermark is not None
    await replicas.watermark.settle()


async def test_a_new_database_assumes_no_gap_and_is_stamped_while_the_feed_is_up(bot: BotHarness) -> None:
    assert bot.runtime is not None and bot.runtime.engine is not None
    assert bot.runtime.engine._gap_start is None  # nothing stamped yet: no gap assumed at the first start
    await quiet(bot)
    replicas = bot.runtime.replicas
    assert replicas.watermark is not None
    replicas.watermark.every = 3600.0
    await replicas.run_once()
    await replicas.watermark.settle()
    first = await stamp(bot)
    assert first is not None
    await replicas.run_once()  # within the period: nothing written
    await replicas.watermark.settle()
    assert await stamp(bot) == first


async def test_a_stamp_that_cannot_be_written_costs_neither_feed_nor_role(
        bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    assert bot.runtime is not None and bot.runtime.engine is not None
    replicas, feed = bot.runtime.replicas, bot.runtime.engine.feed
    watermark = replicas.watermark
    assert watermark is not None
    await quiet(bot)
    store, failing = watermark._store, [3]

    async def locked(now: float) -> None:
        if failing[0]:
            failing[0] -= 1
            raise OSError("database is locked")
        await store(now)

    watermark._store = locked  # type: ignore[method-assign]
    watermark.written = None
    async with bot.runtime.db.write() as session:
        await session.exec(delete(WatermarkRow))  # type: ignore[call-overload]
    with caplog.at_level(logging.WARNING, logger="chatbot.service.watermark"):
        for _ in range(3):
            await replicas.run_once()
            await watermark.settle()
    assert replicas.owns(FEED) and feed.connected.is_set()
    assert watermark.failures == 3 and await stamp(bot) is None
    assert sum("could not store" in r.getMessage() for r in caplog.records) == 1  # logged once, not per pass
    await replicas.run_once()  # the database is back: the next pass stores it
    await watermark.settle()
    assert watermark.failures == 0 and await stamp(bot) is not None
    before = price(bot)
    await bot.say(ALICE, f"/alert {CODE} 이상 {ticks(2, before)}")
    bot.sim.set_price(CODE, ticks(3, before))  # the feed works on
    await bot.wait_for_message(ALICE["id"], ALERT_PUSH, timeout=30)


async def test_a_stamp_from_before_korean_midnight_covers_the_whole_new_day(database: Database) -> None:
    watermark = Watermark(database, FEED)
    assert await watermark.read() is None
    today = dt.datetime.now(KST).replace(hour=0, minute=0, second=30, microsecond=0)
    before_midnight = (today - dt.timedelta(minutes=1)).timestamp()  # 23:59:30 KST, the day before
    assert await watermark.mark(before_midnight)
    since = await Watermark(database, FEED).read()
    assert since == before_midnight
    assert market_second(since, today.timestamp()) == "000000"  # every trade of the new day is after it
    assert await watermark.mark(today.timestamp())  # one row, moved on
    async with database.session() as session:
        (row,) = (await session.exec(select(WatermarkRow))).all()
    assert row.name == FEED and row.watched_at.timestamp() == today.timestamp()


async def test_every_replica_down_and_one_back_judges_the_time_nobody_watched(
        database: Database, second: Database, sim: KisSimulator) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite serves one process: no replicas")
    code = min(sim.market.symbols)
    start = price_of(sim, code)
    await add_alerts(database, [(9, code)], sim)  # fires 3 ticks above the price
    operator, user = new_credentials(), new_credentials()
    a = Replica(sim, database, "replica-a", operator, user)
    b = Replica(sim, second, "replica-b", operator, user)
    c: Replica | None = None
    try:
        await a.replicas.start()
        await b.replicas.start()
        assert a.replicas.owns(FEED) and not b.replicas.owns(FEED)
        await wait_until(lambda: _stamped(database), timeout=30)
        for _ in range(3):
            await b.replicas.run_once()
        assert b.replicas.watermark is not None and b.replicas.watermark.written is None  # only the owner stamps
        await a.kill()
        await b.kill()  # every replica down
        threshold = start + 3 * p.tick_size(start)
        sim.set_price(code, threshold + 2 * p.tick_size(start))  # crossed and back while nobody watches
        sim.set_price(code, start)
        c = Replica(sim, second, "replica-c", operator, user)
        await c.replicas.start()
        assert c.replicas.owns(FEED) and not c.replicas.handovers  # no holder seen: the stamp is the gap's start
        sim.set_price(code, start)
        await wait_until(lambda: _fired_once(database, code), timeout=60)
        await c.replicas.run_once()
        assert await _outbox(database) == 1
    finally:
        if c is not None:
            await c.aclose()
        await b.aclose()
        await a.aclose()


async def _stamped(db: Database) -> bool:
    return await Watermark(db, FEED).read() is not None


async def _fired_once(db: Database, code: str) -> bool:
    return await _count(db, col(AlertRow.code) == code, col(AlertRow.status) == "fired") == 1


async def test_a_gap_still_open_holds_the_stamp_at_its_start(bot: BotHarness) -> None:
    """After a reconnect a symbol's first trade may be long in coming (an illiquid one): until it comes, what
    its extremes crossed in the gap is still to be judged, so a crash then must restart from the gap's start,
    not from a stamp taken since. Both engines' gaps count (an alert's, a stop's)."""
    now = price(bot)
    await buy(bot, ALICE, 10)
    await arm(bot, ALICE, f"/stop {CODE} 10 {ticks(-3, now)}")
    (msg,) = await bot.say(ALICE, f"/alert {CODE} 이하 {ticks(-2, now)}")
    assert "알림 #1" in msg["text"], msg["text"]
    assert bot.runtime is not None and bot.runtime.engine is not None
    replicas, watermark = bot.runtime.replicas, bot.runtime.replicas.watermark
    assert watermark is not None
    await replicas.run_once()
    await watermark.settle()
    stamped = await stamp(bot)
    assert stamped is not None
    trigger_engine = service(bot).engine
    assert trigger_engine is not None
    for engine, began in ((bot.runtime.engine, stamped - 120), (trigger_engine, stamped - 240)):
        engine.assume_gap(began)  # its symbol's first trade since is still to come
        await replicas.run_once()
        await watermark.settle()
        assert await stamp(bot) == pytest.approx(began, abs=0.01)


async def test_a_connection_gone_silent_is_not_stamped_as_watched_past_its_last_frame(bot: BotHarness) -> None:
    """A silently dead connection looks connected until the ping timeout (up to 40 s): stamping 'watched
    until now' meanwhile, a crash or restart then took the time since the last frame as watched, and what the
    extremes of that stretch crossed never fired. The stamp goes no later than when the feed was last heard."""
    assert bot.runtime is not None and bot.runtime.engine is not None
    await quiet(bot)
    replicas, watermark = bot.runtime.replicas, bot.runtime.replicas.watermark
    assert watermark is not None
    feed: Any = bot.runtime.engine.feed
    sessions = [op.session for op in feed.operators] if hasattr(feed, "operators") else [feed]
    assert feed.connected.is_set()
    heard = min(s.last_heard for s in sessions) - 30
    sessions[0].last_heard = heard  # nothing more came on it (the drop is not noticed yet)
    await replicas.run_once()
    await watermark.settle()
    stamped = await stamp(bot)
    assert stamped is not None and stamped <= heard + 0.01, (stamped, heard)
