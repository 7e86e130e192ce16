"""A gap assumed from earlier than an item's arming judges that item only by the extremes made after it: a trailing
stop's level raised after the feed's last stamp (a restart), an alert armed long into a gap the restart assumes,
alerts adopted from another replica together, each from its own storing."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from sqlmodel import col

from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.triggers import STOP, ArmedTrigger, trailing_level
from chatbot.kis.models import KST
from chatbot.service.replicas import FEED, Replicas
from chatbot.service.watermark import Watermark
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow, ConditionalOrderRow
from tests.harness import BotHarness
from tests.test_alert_storms import StandInFeed, count, settled, store_alerts, tick
from tests.test_conditional import ALICE, PLACED, TRIGGERED, arm, buy, price, rows, ticks, wait_for
from tests.test_restart_gap import bot, sells
from tests.test_trigger_restart import _statuses, crashed_after, first_trade_judged, next_second
from tests.test_triggers import engine_with, idle

__all__ = ["bot"]  # the restart-gap tests' bot (quick conditional sync), shared

CODE = "005930"


def second(at: float) -> str:
    return dt.datetime.fromtimestamp(at, KST).strftime("%H%M%S")


def one_market_day(start: float, end: float) -> None:
    """Trades' times of day compare as strings: a test whose moments straddle midnight (KST) is not run."""
    if dt.datetime.fromtimestamp(start, KST).date() != dt.datetime.fromtimestamp(end, KST).date():
        pytest.skip("the test's moments straddle midnight, Korean time")


# -- a trailing stop's level raised after the feed's last stamp ------------------------------------------------
async def test_a_trailing_stop_raised_after_the_stamp_is_judged_from_the_raise() -> None:
    """The engine alone, as a restart starts it: a gap assumed from the last stamp. A trailing stop whose level
    was stored raised after the stamp is set aside from the low made before the raise (above the level in force
    then); one raised before the stamp sells on it; the first sells on a trade after."""
    now = time.time()
    one_market_day(now - 600, now + 60)
    since, low_at, raised = now - 60, now - 40, now - 20
    level = trailing_level(73_500, Decimal(5))
    assert level > 69_500
    engine, feed, fired = await engine_with(
        ArmedTrigger(1, CODE, level, None, Decimal(5), 73_500, armed_at=now - 600, raised_at=raised),
        ArmedTrigger(2, CODE, level, None, Decimal(5), 73_500, armed_at=now - 600, raised_at=now - 300))
    engine.assume_gap(since)
    feed.emit(tick(CODE, 73_000, time=second(now), high=73_500, high_time=second(now - 300),
                   low=69_500, low_time=second(low_at)))
    await idle(engine)
    assert [(c.order_id, c.leg, c.price) for c in fired] == [(2, STOP, 69_500)]
    assert engine.armed(1) is not None
    feed.emit(tick(CODE, 69_500, time=second(now), high=73_500, high_time=second(now - 300),
                   low=69_500, low_time=second(low_at)))
    await idle(engine)
    assert [c.order_id for c in fired] == [2, 1]
    await engine.stop()


async def test_a_trailing_stop_raised_after_the_last_stamp_does_not_sell_on_a_low_made_before_the_raise(
        bot: BotHarness) -> None:
    """End to end: after the last stamp the price dips (above the trailing level then), then makes a new high
    that raises the level above that dip (stored), and the bot crashes. The first trade after the restart
    carries the dip as the day's low: it sold the position on the raised level. Now it stays armed, and sells
    (once) on a crossing after the restart."""
    one_market_day(time.time(), time.time() + 120)
    now = price(bot)
    await buy(bot, ALICE, 10)
    await arm(bot, ALICE, f"/trail {CODE} 10 5%")
    (row,) = await rows(bot, ConditionalOrderRow)
    stamp = time.time()  # the last stamp before the crash: the dip and the raise come after it
    dip, high = ticks(-3, now), ticks(40, now)
    raised = trailing_level(high, Decimal(5))
    assert row.stop_price is not None and row.stop_price < dip < raised < high
    bot.sim.set_price(CODE, dip)  # the day's low, above the level in force: nothing fires
    market = bot.sim.market.get(CODE)
    assert market is not None and market.low == dip
    made = market.low_time
    await next_second(made)  # the raise comes in a later second than the dip
    bot.sim.set_price(CODE, high)  # the level follows the high, above the dip, and is stored
    await wait_for(lambda: _stored_level(bot, raised))
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 0
    await bot.restart(crashed_after(bot, stamp))
    bot.sim.set_price(CODE, high)  # the first trade after the restart: the day's low is the dip
    assert bot.sim.market.get(CODE).low_time == made  # type: ignore[union-attr]
    await first_trade_judged(bot)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 0
    assert await _statuses(bot, ["armed"])
    bot.sim.set_price(CODE, ticks(-1, raised))  # a crossing after the restart: sells, once
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await wait_for(lambda: _statuses(bot, ["placed"]))
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    assert await sells(bot) == 1


async def test_a_trailing_stop_raised_here_is_judged_from_the_raise_when_an_order_on_its_symbol_is_adopted() -> None:
    """The same within one process: the feed's owner sees a dip (above a trailing stop's level) and then a high
    that raises the level above it; an order armed on another replica is adopted on that symbol with a gap check
    from before the dip. The symbol's first trade since carries the dip as the day's low: it sold the trailing
    stop on its raised level."""
    now = time.time()
    one_market_day(now - 600, now + 60)
    engine, feed, fired = await engine_with(ArmedTrigger(1, CODE, None, None, Decimal(1), 70_000, armed_at=now - 600))
    before, dip, high = second(now - 20), second(now - 5), second(now - 3)
    feed.emit(tick(CODE, 70_000, time=before, high=70_000, high_time=before, low=70_000, low_time=before))
    feed.emit(tick(CODE, 69_500, time=dip, high=70_000, high_time=before, low=69_500, low_time=dip))
    feed.emit(tick(CODE, 71_000, time=high, high=71_000, high_time=high, low=69_500, low_time=dip))
    await idle(engine)
    state = engine.trail_state(1)
    assert not fired and state is not None and state[1] > 69_500  # the level raised above the dip
    assert await engine.adopt([ArmedTrigger(2, CODE, 60_000, None)], now - 10) == [2]
    feed.emit(tick(CODE, 70_900, time=second(now), high=71_000, high_time=high, low=69_500, low_time=dip))
    await idle(engine)
    assert not fired and engine.armed(1) is not None
    feed.emit(tick(CODE, 70_000, time=second(now), high=71_000, high_time=high, low=69_500, low_time=dip))
    await idle(engine)  # a crossing after the raise sells it
    assert [(c.order_id, c.price) for c in fired] == [(1, 70_000)]
    await engine.stop()


async def _stored_level(bot: BotHarness, level: int) -> bool:
    (row,) = await rows(bot, ConditionalOrderRow)
    return bool(row.stop_price == level)


# -- an alert armed long into the gap a restart assumes -------------------------------------------------------
async def test_a_restart_judges_an_alert_armed_long_after_the_last_stamp_from_its_arming(
        database: Database) -> None:
    """The feed down since its last stamp ten minutes ago (the bot up meanwhile, then restarted): an alert
    armed five minutes ago, after the day's high made eight minutes ago, was loaded as armed before the gap
    (only those stored in the last two minutes were set aside) and fired on that high. The one armed before the
    stamp fires on it; the later one on a crossing after."""
    now = time.time()
    one_market_day(now - 600, now + 60)
    stamp, made, armed = now - 600, now - 500, now - 300
    before, after = await store_alerts(database, [(CODE, "above", 71_000), (CODE, "above", 71_000)])
    async with database.engine.begin() as conn:
        for alert_id, at in ((before, stamp - 60), (after, armed)):
            stored = dt.datetime.fromtimestamp(at, dt.UTC)
            await conn.execute(AlertRow.__table__.update().where(  # type: ignore[attr-defined]
                AlertRow.__table__.c.id == alert_id).values(  # type: ignore[attr-defined]
                created_at=stored, updated_at=stored))
    assert await Watermark(database, FEED).mark(stamp)
    feed = StandInFeed()
    engine = AlertEngine(database, feed, lambda: None, rearm_interval=3600)  # type: ignore[arg-type]
    replicas = Replicas(database, "owner", interval=3600)
    replicas.feed_role(engine)
    await replicas.start()  # takes the feed, no holder seen: a gap from the last stamp
    try:
        assert replicas.owns(FEED) and engine.unwatched_since() == pytest.approx(stamp)
        feed.emit(tick(CODE, 70_000, time=second(now), high=71_500, high_time=second(made)))
        await settled(engine)
        assert engine.fired == 1 and after in engine.book and before not in engine.book
        feed.emit(tick(CODE, 71_000, time=second(now), high=71_500, high_time=second(made)))
        await settled(engine)
        assert engine.fired == 2
    finally:
        await replicas.stop()


# -- alerts adopted from another replica, each from its own storing ---------------------------------------------
async def test_alerts_adopted_together_are_each_judged_from_their_own_storing(database: Database) -> None:
    """Two alerts on one symbol stored by another replica, the day's high made between them, adopted in one pass
    of the feed's owner: the first fires on that high; the second, stored after it (under it: its replica's price
    check passed), was judged from the first one's storing and fired on it. Now it fires on a crossing after."""
    if database.is_sqlite:
        pytest.skip("SQLite serves one process: nothing is armed elsewhere")
    feed = StandInFeed()
    engine = AlertEngine(database, feed, lambda: None, rearm_interval=3600)  # type: ignore[arg-type]
    replicas = Replicas(database, "owner", interval=3600)  # no pass but the test's
    replicas.feed_role(engine)
    await replicas.start()
    try:
        assert replicas.owns(FEED) and not len(engine.book)
        one_market_day(time.time(), time.time() + 60)
        (first,) = await store_alerts(database, [(CODE, "above", 71_200)])  # armed elsewhere
        stored = time.time()
        await next_second(second(stored))
        made = second(time.time())  # the day's high is made in this second, after the first ...
        await next_second(made)
        (later,) = await store_alerts(database, [(CODE, "above", 71_000)])  # ... and before this one
        await replicas.run_once()  # adopts both
        assert first in engine.book and later in engine.book
        now = second(time.time())
        feed.emit(tick(CODE, 70_000, time=now, high=71_500, high_time=made))
        await settled(engine)
        assert engine.fired == 1 and first not in engine.book and later in engine.book
        feed.emit(tick(CODE, 71_000, time=now, high=71_500, high_time=made))
        await settled(engine)
        assert engine.fired == 2
    finally:
        await replicas.stop()
    assert await count(database, AlertRow, col(AlertRow.status) == "fired", col(AlertRow.id).in_([first, later])) == 2


@pytest.mark.parametrize("trade_between", [False, True], ids=["together", "first-trade-between"])
async def test_an_alert_adopted_before_an_earlier_stored_one_is_not_judged_from_the_earlier(
        database: Database, trade_between: bool) -> None:
    """Alerts adopted one pass after the other out of their storing order (the one stored ten seconds ago, then
    one stored forty seconds ago): the gap's start moves back to the earlier; the high made twenty-five seconds
    ago, before the first existed, must not fire it. It fires on a crossing after."""
    now = time.time()
    one_market_day(now - 60, now + 60)
    feed = StandInFeed()
    engine = AlertEngine(database, feed, lambda: None, rearm_interval=3600)  # type: ignore[arg-type]
    await engine.start()
    try:
        first, earlier = await store_alerts(database, [(CODE, "above", 71_000), (CODE, "above", 80_000)])
        high = {"high": 71_500, "high_time": second(now - 25)}
        assert await engine.adopt([(first, CODE, "above", 71_000)], [now - 10]) == [first]
        if trade_between:
            feed.emit(tick(CODE, 70_000, time=second(now), **high))  # (its high older than the gap: not judged)
            await settled(engine)
            assert engine.fired == 0 and engine.unwatched_since() is None
        assert await engine.adopt([(earlier, CODE, "above", 80_000)], [now - 40]) == [earlier]
        feed.emit(tick(CODE, 70_000, time=second(now), **high))
        await settled(engine)
        assert engine.unwatched_since() is None  # the symbol's first trade since was judged
        assert engine.fired == 0 and first in engine.book
        feed.emit(tick(CODE, 71_000, time=second(now), **high))
        await settled(engine)
        assert engine.fired == 1 and first not in engine.book and earlier in engine.book
    finally:
        await engine.stop()
