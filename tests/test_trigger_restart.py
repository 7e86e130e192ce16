"""A restart assumes a feed gap from the feed's last stamp (chatbot.service.watermark): the first trade of each
symbol after it carries the day's high and low, and what they crossed while nobody watched fires once. A
conditional order confirmed after that stamp (the bot crashed within a stamping period of its arming, or
with the feed down since then) must not fire on an extreme made before it was armed: that sells a real
position on a price the market never revisited after the order existed. End to end: fake Bot API ↔ bot ↔
simulator."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chatbot.alerts import triggers as triggers_module
from chatbot.alerts.triggers import STOP, ArmedTrigger
from chatbot.kis.models import KST
from chatbot.kis.realtime import Disconnected, Reconnected
from chatbot.service.replicas import FEED
from chatbot.service.watermark import Watermark
from chatbot.storage import Database
from chatbot.storage.sim_state import DbSimStateStore
from chatbot.storage.tables import ConditionalOrderRow
from tests.harness import BotHarness
from tests.test_alert_storms import tick
from tests.test_conditional import ALICE, PLACED, TRIGGERED, arm, buy, price, rows, service, ticks, wait_for
from tests.test_restart_gap import bot, sells
from tests.test_triggers import engine_with, idle

__all__ = ["bot"]  # the restart-gap tests' bot (quick conditional sync), shared
CODE = "005930"


def crashed_after(bot: BotHarness, stamp: float, *path: int) -> Callable[[], Awaitable[None]]:
    """While the bot is down: the feed's last stamp is ``stamp`` (a crash: the clean stop's last stamp is
    undone), and the simulator's market trades at ``path`` (its state stored for the restarted one: the
    day's high and low with their times)."""
    sim = bot.sim

    async def down() -> None:
        for level in path:
            sim.set_price(CODE, level)
        db = Database(bot.settings.database.url)
        try:
            await DbSimStateStore(db).save_many({"market": sim.market.snapshot()})
            assert await Watermark(db, FEED).mark(stamp)
        finally:
            await db.dispose()
    return down


async def next_second(after: str) -> None:
    """Until the market second (KST) is a later one than ``after``."""
    await wait_for(lambda: dt.datetime.now(KST).strftime("%H%M%S") != after)


async def first_trade_judged(bot: BotHarness, before: int = 0) -> None:
    """The trigger engine has judged a symbol's first trade after a gap (its day's high and low since the gap
    began: the restart's, or one assumed when ``before`` such trades had been judged) and handed over what it
    crossed; it crossed nothing. (Not "no gap open and a last price": also so when the trade came before the gap
    was assumed, and a crossing judged after the wait fired after the test's look.)"""
    engine = service(bot).engine
    assert engine is not None
    await wait_for(lambda: engine.gap_trades > before)
    await engine.wait_idle()
    assert engine.crossed == 0


async def test_a_stop_armed_after_the_days_low_does_not_fire_on_it_after_a_restart(bot: BotHarness) -> None:
    """The day's low is made; the stop is confirmed later, above that low, while the price is well above it;
    the bot goes down with its last stamp from before the low. The first trade after the restart carries that
    low: the stop stays armed, and fires (once) on a crossing after it."""
    now = price(bot)
    await buy(bot, ALICE, 10)
    stamp = time.time()  # the last stamp before the crash: the low below is made after it
    low = ticks(-5, now)
    bot.sim.set_price(CODE, low)
    market = bot.sim.market.get(CODE)
    assert market is not None and market.low == low  # the day's low
    made = market.low_time
    bot.sim.set_price(CODE, now)
    await next_second(made)  # the stop is armed in a later second than the low was made in
    await arm(bot, ALICE, f"/stop {CODE} 10 {ticks(-3, now)}")
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "armed" and row.armed_at is not None and row.armed_at.timestamp() > stamp
    await bot.restart(crashed_after(bot, stamp))
    bot.sim.set_price(CODE, now)  # the first trade after the restart: the day's low is the old one
    assert bot.sim.market.get(CODE).low_time == made  # type: ignore[union-attr]
    await first_trade_judged(bot)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 0
    assert await _statuses(bot, ["armed"])
    bot.sim.set_price(CODE, ticks(-3, now))  # a crossing after it was armed: fires, once
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await wait_for(lambda: _statuses(bot, ["placed"]))
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    assert await sells(bot) == 1


async def test_a_stop_crossed_while_down_fires_once_though_armed_after_the_last_stamp(bot: BotHarness) -> None:
    """The other side: a stop armed after the last stamp (the crash came within a stamping period) whose
    trigger the market crossed while the bot was down fires at the restart, exactly once (an extreme made
    after the arming is judged as any made in the gap)."""
    now = price(bot)
    await buy(bot, ALICE, 10)
    stamp = time.time()
    await arm(bot, ALICE, f"/stop {CODE} 10 {ticks(-3, now)}")
    (row,) = await rows(bot, ConditionalOrderRow)
    armed = row.armed_at.astimezone(KST).strftime("%H%M%S")
    await next_second(armed)  # the dip comes in a later second than the arming
    await bot.restart(crashed_after(bot, stamp, ticks(-5, now), now))
    assert bot.sim.market.get(CODE).low_time > armed  # type: ignore[union-attr]
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 0
    bot.sim.set_price(CODE, now)  # the first trade after the restart carries the day's low, made meanwhile
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await wait_for(lambda: _statuses(bot, ["placed"]))
    for _ in range(3):  # more trades, another restart: nothing fires again
        await bot.sim.tick()
    await bot.restart()
    # A stop armed after the restart, crossed by a trade after the restart's first: its firing is the sign
    # that the restarted bot judged the trades (and recovered what it had to) before the count below.
    await buy(bot, ALICE, 10)
    bot.sim.set_price(CODE, now)
    await arm(bot, ALICE, f"/stop {CODE} 10 {ticks(-3, now)}")
    bot.sim.set_price(CODE, ticks(-3, now))
    await wait_for(lambda: _statuses(bot, ["placed", "placed"]))
    await wait_for(lambda: bot.count_messages(ALICE["id"], PLACED) == 2)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 2  # the first once, the second once
    assert await sells(bot) == 2


async def test_a_high_made_before_the_stop_was_armed_does_not_keep_its_later_crossing_from_firing(
        bot: BotHarness) -> None:
    """Set aside from the extremes made before it was armed, not from the gap as a whole: the day's high made
    after the last stamp and before the stop was armed (nothing to a stop), the low made while the bot was down
    after it: the stop fires on that low at the restart, once."""
    now = price(bot)
    await buy(bot, ALICE, 10)
    stamp = time.time()
    bot.sim.set_price(CODE, ticks(10, now))  # a new day's high, seen live, after the stamp
    bot.sim.set_price(CODE, now)
    day = bot.sim.market.get(CODE)
    assert day is not None and day.high == ticks(10, now)  # the day's high
    high = day.high_time
    await next_second(high)
    await arm(bot, ALICE, f"/stop {CODE} 10 {ticks(-3, now)}")
    (row,) = await rows(bot, ConditionalOrderRow)
    armed = row.armed_at.astimezone(KST).strftime("%H%M%S")
    await next_second(armed)
    await bot.restart(crashed_after(bot, stamp, ticks(-5, now), now))
    market = bot.sim.market.get(CODE)
    assert market is not None and market.high_time == high < armed < market.low_time
    bot.sim.set_price(CODE, now)
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await wait_for(lambda: _statuses(bot, ["placed"]))
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    assert await sells(bot) == 1


async def _statuses(bot: BotHarness, expected: list[str]) -> bool:
    """The conditional orders' statuses, by id."""
    return [r.status for r in sorted(await rows(bot, ConditionalOrderRow), key=lambda r: r.id)] == expected


async def test_a_stop_armed_in_a_drop_after_the_gaps_high_fires_on_the_low_after_it(monkeypatch: Any) -> None:
    """The same in a feed drop, on the engine alone: a stop armed during the gap, after the gap's high and
    before its low, is set aside from the high only (set aside whole, the low after it was never judged)."""
    now = time.time()
    high, armed, low = (dt.datetime.fromtimestamp(now + d, KST).strftime("%H%M%S") for d in (-20, -10, -5))
    engine, feed, fired = await engine_with(ArmedTrigger(1, CODE, 60_000, None))  # the symbol on the feed
    feed.emit(tick(CODE, 70_000))
    feed.emit(Disconnected("ConnectionClosedError", last_heard=now - 30))
    monkeypatch.setattr(triggers_module, "_market_second", lambda: armed)
    async with engine.arming(CODE) as seen:
        engine.arm(ArmedTrigger(7, CODE, 69_000, None), seen)
    feed.emit(Reconnected(1))
    feed.emit(tick(CODE, 70_000, time=low, high=71_000, high_time=high, low=68_500, low_time=low))
    await idle(engine)
    assert [(c.order_id, c.leg, c.price) for c in fired] == [(7, STOP, 68_500)]
    await engine.stop()


# -- among replicas (PostgreSQL): orders armed on another replica, adopted by the feed's owner ----------------
async def test_a_stop_adopted_with_an_earlier_one_is_not_judged_from_the_earlier_ones_arming(db_url: str) -> None:
    """Two stops on one symbol armed on another replica and adopted in one pass of the feed's owner: each is
    judged from its own arming (the trades seen since, the day's low since), not from the earliest one's. The
    low made between the two armings sold the later stop, set above it (the price check passed)."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serves one process: no other replica")
    from chatbot.kis import protocol as p
    from chatbot.service.conditional import ARMING_MARGIN
    from chatbot.service.views import Outcome
    from tests.test_replica_roles import conditional_orders_elsewhere

    bot = BotHarness(db_url)
    await bot.start()
    other_db = Database(db_url)
    try:
        runtime = bot.runtime
        assert runtime is not None and runtime.engine is not None
        owner = service(bot)
        await wait_for(lambda: runtime.replicas.owns(FEED) and owner.engine is not None)
        engine = owner.engine
        assert engine is not None
        await buy(bot, ALICE, 20)
        elsewhere = conditional_orders_elsewhere(other_db, runtime)
        user = ALICE["id"]

        async def arm_elsewhere(level: int) -> int:
            card = await elsewhere.prepare(user, user, "ko", "stop", [CODE, "10", str(level)])
            await elsewhere.attach_card(card.token, user, 900 + level % 97)
            armed = await elsewhere.confirm(card.token, user, 900 + level % 97)
            assert armed.outcome is Outcome.PLACED and armed.view is not None
            return int(armed.view.id)

        now = price(bot)
        await runtime.engine.feed.subscribe(p.WS_TRADE, CODE)  # the feed carries the symbol already (an alert)
        async with runtime.replicas._pass_lock:  # the owner's passes wait: it knows neither yet
            first = await arm_elsewhere(ticks(-8, now))  # far below: nothing here crosses it
            bot.sim.set_price(CODE, ticks(-5, now))  # the day's low, after the first was armed ...
            made = time.time()
            await wait_for(lambda: runtime.replicas.recent_prices(CODE, 0.0)[-1:] == [ticks(-5, now)])
            bot.sim.set_price(CODE, now)  # ... and back
            await wait_for(lambda: runtime.replicas.recent_prices(CODE, 0.0)[-1:] == [now])
            # (An order adopted counts crossings from ARMING_MARGIN before it was stored: its replica's price
            # check came a little earlier. The low is made well before that.)
            await wait_for(lambda: time.time() > made + ARMING_MARGIN + 1.0)
            later = await arm_elsewhere(ticks(-3, now))  # above that low, the price well above it
            judged = engine.gap_trades  # (the trades above closed any gap open before on the symbol)
        await wait_for(lambda: engine.knows(first) and engine.knows(later))  # adopted (and fired, if crossed)
        bot.sim.set_price(CODE, now)  # the first trade since: the day's low is the one made before ``later``
        await first_trade_judged(bot, judged)
        assert bot.count_messages(user, TRIGGERED) == 0
        assert await _statuses(bot, ["armed", "armed"])
        bot.sim.set_price(CODE, ticks(-3, now))  # a crossing after it was armed: the later one fires, once
        await bot.wait_for_message(user, PLACED, timeout=60)
        await wait_for(lambda: _statuses(bot, ["armed", "placed"]))
        assert bot.count_messages(user, TRIGGERED) == 1
    finally:
        await other_db.dispose()
        await bot.stop()


async def test_a_feed_taken_over_judges_each_order_from_its_arming_not_the_takers_since() -> None:
    """The engine alone, as a replica taking the feed over (or a restart) starts it: a gap assumed from when the
    previous owner was last seen alive. An order armed before then fires on the gap's low; one armed after that
    low does not (and fires on a trade after it); one armed before the low and after ``since`` fires too."""
    now = time.time()
    since, early, low_at = now - 60, now - 50, now - 40
    seconds = {d: dt.datetime.fromtimestamp(d, KST).strftime("%H%M%S") for d in (low_at, now)}
    engine, feed, fired = await engine_with(ArmedTrigger(1, CODE, 69_000, None, armed_at=now - 600),
                                            ArmedTrigger(2, CODE, 69_000, None, armed_at=early),
                                            ArmedTrigger(3, CODE, 69_000, None, armed_at=now - 30))
    engine.assume_gap(since)
    feed.emit(tick(CODE, 70_000, time=seconds[now], low=68_500, low_time=seconds[low_at]))
    await idle(engine)
    assert sorted((c.order_id, c.price) for c in fired) == [(1, 68_500), (2, 68_500)]
    assert engine.armed(3) is not None
    feed.emit(tick(CODE, 69_000, time=seconds[now], low=68_500, low_time=seconds[low_at]))
    await idle(engine)
    assert sorted(c.order_id for c in fired) == [1, 2, 3]
    await engine.stop()


# -- orders adopted from another replica out of their arming order ---------------------------------------------
def _second(at: float) -> str:
    return dt.datetime.fromtimestamp(at, KST).strftime("%H%M%S")


def _one_market_day(start: float, end: float) -> None:
    if dt.datetime.fromtimestamp(start, KST).date() != dt.datetime.fromtimestamp(end, KST).date():
        pytest.skip("the test's moments straddle midnight, Korean time")


@pytest.mark.parametrize("trade_between", [False, True], ids=["together", "first-trade-between"])
async def test_an_order_adopted_before_an_earlier_armed_one_is_not_judged_from_the_earlier(
        trade_between: bool) -> None:
    """A stop armed on another replica ten seconds ago is adopted, then one armed forty seconds ago (a pass that
    came late, a sweep): the gap's start moves back to the earlier. The low made twenty-five seconds ago, before
    the first stop existed, sold it at the symbol's first trade (also when a trade came between the two
    adoptions: it was judged again from the earlier start). It fires on a crossing after."""
    now = time.time()
    _one_market_day(now - 60, now + 60)
    low = {"low": 68_000, "low_time": _second(now - 25)}
    engine, feed, fired = await engine_with()
    assert await engine.adopt([ArmedTrigger(1, CODE, 69_000, None, armed_at=now - 8)], now - 10) == [1]
    if trade_between:
        feed.emit(tick(CODE, 70_000, time=_second(now), **low))  # (its low older than the gap: not judged)
        await idle(engine)
        assert engine.gap_trades == 1 and not fired
    assert await engine.adopt([ArmedTrigger(2, CODE, 60_000, None, armed_at=now - 38)], now - 40) == [2]
    judged = engine.gap_trades
    feed.emit(tick(CODE, 70_000, time=_second(now), **low))
    await idle(engine)
    assert engine.gap_trades == judged + 1  # the first trade since the second adoption was judged
    assert not fired and engine.armed(1) is not None and engine.armed(2) is not None
    feed.emit(tick(CODE, 69_000, time=_second(now), **low))
    await idle(engine)
    assert [(c.order_id, c.leg, c.price) for c in fired] == [(1, STOP, 69_000)]
    await engine.stop()


async def test_a_low_made_after_both_adopted_orders_fires_them_whatever_order_they_came_in() -> None:
    """The other side: the low made after both were armed fires both at the symbol's first trade."""
    now = time.time()
    _one_market_day(now - 60, now + 60)
    engine, feed, fired = await engine_with()
    assert await engine.adopt([ArmedTrigger(1, CODE, 69_000, None, armed_at=now - 8)], now - 10) == [1]
    assert await engine.adopt([ArmedTrigger(2, CODE, 68_500, None, armed_at=now - 38)], now - 40) == [2]
    feed.emit(tick(CODE, 70_000, time=_second(now), low=68_000, low_time=_second(now - 5)))
    await idle(engine)
    assert sorted((c.order_id, c.price) for c in fired) == [(1, 68_000), (2, 68_000)]
    await engine.stop()
