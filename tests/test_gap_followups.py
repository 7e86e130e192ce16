"""A gap assumed from earlier than an item's arming judges that item only by the extremes made after it: an alert
armed long into a gap a restart assumes; alerts adopted from another replica together, each from its own storing."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlmodel import col

from chatbot.alerts.engine import AlertEngine
from chatbot.kis.models import KST
from chatbot.service.replicas import FEED, Replicas
from chatbot.service.watermark import Watermark
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow
from tests.test_alert_storms import StandInFeed, count, settled, store_alerts, tick
from tests.test_trigger_restart import next_second

CODE = "005930"


def second(at: float) -> str:
    return dt.datetime.fromtimestamp(at, KST).strftime("%H%M%S")


# -- an alert armed long into the gap a restart assumes -------------------------------------------------------
async def test_a_restart_judges_an_alert_armed_long_after_the_last_stamp_from_its_arming(
        database: Database) -> None:
    """The feed down since its last stamp ten minutes ago (the bot up meanwhile, then restarted): an alert
    armed five minutes ago, after the day's high made eight minutes ago, was loaded as armed before the gap
    (only those stored in the last two minutes were set aside) and fired on that high. The one armed before the
    stamp fires on it; the later one on a crossing after."""
    now = time.time()
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
