"""US sessions in KST from America/New_York: both sides of each DST switch, NYSE holidays, early closes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.markets.us_hours import (
    SEOUL,
    UsCalendar,
    UsPhase,
    early_close_name,
    holiday_name,
    is_trading_day,
    next_session,
    session,
)

ROOT = Path(__file__).resolve().parent.parent


def kst(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SEOUL)


def phase(text: str) -> UsPhase:
    return UsCalendar().state(kst(text)).phase


def kst_times(day: dt.date) -> tuple[str, str, str, str]:
    s = session(day)
    assert s is not None
    return tuple(t.astimezone(SEOUL).strftime("%m-%d %H:%M") for t in (s.pre_open, s.open, s.close,  # type: ignore[return-value]
                                                                        s.after_close))


@pytest.mark.parametrize(("day", "expected"), [
    # 2026: DST from Sunday 8 March to Sunday 1 November (New York's rule; Korea keeps none).
    (dt.date(2026, 3, 6), ("03-06 18:00", "03-06 23:30", "03-07 06:00", "03-07 07:00")),  # Friday, winter
    (dt.date(2026, 3, 9), ("03-09 17:00", "03-09 22:30", "03-10 05:00", "03-10 07:00")),  # Monday, summer
    (dt.date(2026, 10, 30), ("10-30 17:00", "10-30 22:30", "10-31 05:00", "10-31 07:00")),  # Friday, summer
    (dt.date(2026, 11, 2), ("11-02 18:00", "11-02 23:30", "11-03 06:00", "11-03 07:00")),  # Monday, winter
])
def test_sessions_follow_new_york_daylight_saving(day: dt.date, expected: tuple[str, ...]) -> None:
    assert kst_times(day) == expected


@pytest.mark.parametrize(("moment", "expected"), [
    ("2026-03-06 17:59", UsPhase.DAYTIME), ("2026-03-06 18:00", UsPhase.PRE_MARKET),
    ("2026-03-06 23:29", UsPhase.PRE_MARKET), ("2026-03-06 23:30", UsPhase.REGULAR),
    ("2026-03-07 05:59", UsPhase.REGULAR), ("2026-03-07 06:00", UsPhase.AFTER_MARKET),
    ("2026-03-07 06:59", UsPhase.AFTER_MARKET), ("2026-03-07 07:00", UsPhase.WEEKEND),  # Saturday in Korea
    ("2026-03-07 15:00", UsPhase.WEEKEND), ("2026-03-09 12:00", UsPhase.DAYTIME),
    ("2026-03-09 16:59", UsPhase.DAYTIME), ("2026-03-09 17:00", UsPhase.PRE_MARKET),  # summer: daytime ends early
    ("2026-03-09 22:29", UsPhase.PRE_MARKET), ("2026-03-09 22:30", UsPhase.REGULAR),
    ("2026-03-10 04:59", UsPhase.REGULAR), ("2026-03-10 05:00", UsPhase.AFTER_MARKET),
    ("2026-03-10 09:00", UsPhase.CLOSED), ("2026-03-09 03:00", UsPhase.WEEKEND),  # Monday before dawn: Sunday's
])
def test_phases_around_the_spring_switch(moment: str, expected: UsPhase) -> None:
    assert phase(moment) is expected


def test_nyse_holidays_close_the_whole_day() -> None:
    for day, name in ((dt.date(2026, 4, 3), "Good Friday"), (dt.date(2026, 6, 19), "Juneteenth"),
                      (dt.date(2026, 7, 3), "Independence Day"), (dt.date(2026, 11, 26), "Thanksgiving"),
                      (dt.date(2026, 12, 25), "Christmas"), (dt.date(2027, 1, 1), "New Year")):
        found = holiday_name(day)
        assert found is not None and name in found and not is_trading_day(day) and session(day) is None
    assert is_trading_day(dt.date(2026, 7, 2)) and holiday_name(dt.date(2026, 10, 12)) is None  # Columbus Day trades
    state = UsCalendar().state(kst("2026-11-26 23:40"))  # Thanksgiving evening in Korea
    assert state.phase is UsPhase.HOLIDAY and "Thanksgiving" in state.holiday_name
    assert state.next_open.astimezone(SEOUL) == kst("2026-11-27 23:30")
    assert UsCalendar().state(kst("2026-04-03 12:00")).phase is UsPhase.HOLIDAY  # no daytime session either


def test_early_closes_end_the_regular_session_at_one() -> None:
    assert early_close_name(dt.date(2026, 11, 27)) and early_close_name(dt.date(2026, 12, 24))
    assert early_close_name(dt.date(2025, 7, 3)) and early_close_name(dt.date(2026, 7, 2)) is None
    assert kst_times(dt.date(2026, 11, 27)) == ("11-27 18:00", "11-27 23:30", "11-28 03:00", "11-28 07:00")
    assert kst_times(dt.date(2025, 7, 3)) == ("07-03 17:00", "07-03 22:30", "07-04 02:00", "07-04 07:00")
    assert phase("2026-11-28 02:59") is UsPhase.REGULAR and phase("2026-11-28 03:00") is UsPhase.AFTER_MARKET
    assert phase("2026-12-25 03:30") is UsPhase.AFTER_MARKET  # Christmas Eve's after-market, Korean Christmas


def test_next_open_skips_weekends_and_holidays() -> None:
    assert next_session(kst("2026-12-24 10:00")).day == dt.date(2026, 12, 24)
    assert next_session(kst("2026-12-24 23:31")).day == dt.date(2026, 12, 28)  # Christmas, then the weekend
    assert UsCalendar().state(kst("2026-03-07 15:00")).next_open.astimezone(SEOUL) == kst("2026-03-09 22:30")
    assert UsCalendar().state(kst("2026-03-06 23:45")).next_open.astimezone(SEOUL) == kst("2026-03-09 22:30")


@pytest.mark.parametrize(("moment", "open_"), [
    ("2026-12-07 09:59", False), ("2026-12-07 10:00", True), ("2026-12-07 16:29", True),
    ("2026-12-07 16:30", False), ("2026-12-07 16:44", False), ("2026-12-07 16:45", True),
    ("2026-12-07 23:19", True), ("2026-12-07 23:20", False),  # winter: until ten minutes before 23:30
    ("2026-06-08 22:19", True), ("2026-06-08 22:20", False),  # summer: before 22:30
    ("2026-12-05 12:00", False),  # Saturday
    ("2026-12-25 12:00", True),  # a Korean weekday: held for the next US trading day
])
def test_reservation_window(moment: str, open_: bool) -> None:
    calendar = UsCalendar()
    assert calendar.reservation_open(kst(moment)) is open_
    assert calendar.reservation_target(kst("2026-12-25 12:00")).day == dt.date(2026, 12, 28)


def test_always_open_and_naive_times() -> None:
    calendar = UsCalendar(always_open=True)
    assert calendar.state(kst("2026-12-06 12:00")).phase is UsPhase.REGULAR  # a Sunday
    assert calendar.reservation_open(kst("2026-12-06 12:00"))
    with pytest.raises(ValueError):
        UsCalendar().state(dt.datetime(2026, 12, 7, 12, 0))


def test_the_holiday_calendar_is_imported_on_first_use() -> None:
    code = ("import sys, datetime; import chatbot.markets.us_hours as h; assert 'holidays' not in sys.modules; "
            "h.is_trading_day(datetime.date(2026, 1, 2)); assert 'holidays' in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
