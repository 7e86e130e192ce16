"""A restart judges an alert from when it was last armed, not from when it was created: a repeat alert
re-armed after its cooldown, or one resumed from pause, after the feed's last stamp must not be pushed by a
day extreme made during its cooldown or its pause (it was not armed then). Judged from ``created_at`` it
was taken as armed before the gap and the first tick after the restart, carrying that extreme, pushed it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import update

from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.repository import AlertRepository
from chatbot.kis.models import KST
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow
from tests.test_alert_storms import CODE, StandInFeed, settled, store_alerts, tick


@pytest.fixture
async def engines(database: Database) -> AsyncIterator[Callable[[float | None], Awaitable[tuple[AlertEngine,
                                                                                             StandInFeed]]]]:
    """Engines on their own stand-in feeds, each started (``since``: a restart's gap), all stopped after."""
    started: list[AlertEngine] = []

    async def start(since: float | None) -> tuple[AlertEngine, StandInFeed]:
        feed = StandInFeed()
        engine = AlertEngine(database, feed, lambda: None, rearm_interval=3600)  # type: ignore[arg-type]
        await engine.start(since)
        started.append(engine)
        return engine, feed

    yield start
    for engine in started:
        if engine._tasks:
            await engine.stop()


async def backdate(database: Database, alert_id: int, at: float, **values: object) -> None:
    """Stored (and last armed) at ``at``, an hour before the feed's last stamp."""
    when = dt.datetime.fromtimestamp(at, dt.UTC)
    async with database.engine.begin() as conn:
        await conn.execute(update(AlertRow).where(AlertRow.id == alert_id)  # type: ignore[arg-type]
                           .values(created_at=when, updated_at=when, **values))


async def restart_after_a_high_made_before_the_arming(
        engines: Callable[[float | None], Awaitable[tuple[AlertEngine, StandInFeed]]], stamp: float,
        alert_id: int) -> None:
    """The restart's first tick carries the day's high, made 5 s after the stamp (before the alert was armed
    again): it must not push the alert; a crossing after its arming does."""
    made = dt.datetime.fromtimestamp(stamp + 5, KST).strftime("%H%M%S")
    engine, feed = await engines(stamp)
    now = dt.datetime.now(KST).strftime("%H%M%S")
    feed.emit(tick(CODE, 70_000, time=now, high=71_500, high_time=made))
    await settled(engine)
    assert engine.fired == 0 and alert_id in engine.book
    feed.emit(tick(CODE, 71_000, time=now, high=71_500, high_time=made))  # a crossing after it pushes it
    await settled(engine)
    assert engine.fired == 1


async def test_a_repeat_alert_rearmed_after_the_stamp_is_not_pushed_by_a_high_made_in_its_cooldown(
        database: Database, engines: Callable[[float | None], Awaitable[tuple[AlertEngine, StandInFeed]]]) -> None:
    stamp = time.time() - 10  # the feed's last stamp; the high is made at +5 s, the cooldown ends after it
    (alert_id,) = await store_alerts(database, [(CODE, "above", 71_000)], repeat=True)
    await backdate(database, alert_id, stamp - 3600, status="cooling", fired_count=1,
                   rearm_at=dt.datetime.fromtimestamp(stamp - 60, dt.UTC))
    before, _ = await engines(None)  # the bot before the restart: its cooldown over, re-armed now
    assert await before.rearm_due() == 1
    await before.stop()
    async with database.session() as session:
        row = await session.get(AlertRow, alert_id)
        assert row is not None and row.status == "armed" and row.updated_at.timestamp() > stamp + 5
    await restart_after_a_high_made_before_the_arming(engines, stamp, alert_id)


async def test_an_alert_resumed_after_the_stamp_is_not_pushed_by_a_high_made_in_its_pause(
        database: Database, engines: Callable[[float | None], Awaitable[tuple[AlertEngine, StandInFeed]]]) -> None:
    stamp = time.time() - 10
    (alert_id,) = await store_alerts(database, [(CODE, "above", 71_000)])
    repository = AlertRepository(database)
    (row,) = await repository.pause_owner(row_owner := 1)  # store_alerts' first alert is owner 1's
    assert row.id == alert_id
    await backdate(database, alert_id, stamp - 3600)  # paused an hour before the stamp
    (row,) = await repository.resume_owner(row_owner)  # the user is back after the high
    assert row.updated_at.timestamp() > stamp + 5
    await restart_after_a_high_made_before_the_arming(engines, stamp, alert_id)


async def test_an_alert_armed_before_the_stamp_is_still_pushed_by_a_high_made_in_the_gap(
        database: Database, engines: Callable[[float | None], Awaitable[tuple[AlertEngine, StandInFeed]]]) -> None:
    """What the set-aside must not lose: armed (and not re-armed) before the stamp, a high made in the gap
    crossing it pushes it at the restart."""
    stamp = time.time() - 10
    (alert_id,) = await store_alerts(database, [(CODE, "above", 71_000)])
    await backdate(database, alert_id, stamp - 3600)
    made = dt.datetime.fromtimestamp(stamp + 5, KST).strftime("%H%M%S")
    engine, feed = await engines(stamp)
    now = dt.datetime.now(KST).strftime("%H%M%S")
    feed.emit(tick(CODE, 70_000, time=now, high=71_500, high_time=made))
    await settled(engine)
    assert engine.fired == 1 and alert_id not in engine.book
