"""KRX trading sessions and holidays (KIS_API.md §6.4), and KIS maintenance windows.

Holidays come from the ``holidays`` package's KRX calendar (public holidays, election days, the
year-end closing day), not from a list kept here. Times are KST. KIS publishes no fixed
maintenance schedule (§6.3, unverified), so maintenance windows are the operator's to configure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import holidays

KST: Final = dt.timezone(dt.timedelta(hours=9), "KST")  # Korea's clock and KIS's: the one definition


class Phase(StrEnum):
    PRE_OPEN = "pre_open"  # 08:30–09:00 opening auction: orders wait for 09:00
    REGULAR = "regular"  # 09:00–15:20
    CLOSING_AUCTION = "closing_auction"  # 15:20–15:30: orders match at 15:30
    AFTER_CLOSE = "after_close"  # 15:30–18:00 off-hours sessions (close price, single price)
    CLOSED = "closed"  # a trading day, outside every session
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    MAINTENANCE = "maintenance"


SESSIONS: tuple[tuple[dt.time, dt.time, Phase], ...] = (
    (dt.time(8, 30), dt.time(9, 0), Phase.PRE_OPEN),
    (dt.time(9, 0), dt.time(15, 20), Phase.REGULAR),
    (dt.time(15, 20), dt.time(15, 30), Phase.CLOSING_AUCTION),
    (dt.time(15, 30), dt.time(18, 0), Phase.AFTER_CLOSE),
)
OPEN = dt.time(9, 0)


@dataclass(frozen=True, slots=True)
class MarketState:
    phase: Phase
    now: dt.datetime
    next_open: dt.datetime  # the next regular-session open (09:00 KST of a trading day)
    holiday_name: str = ""


@lru_cache(maxsize=16)
def _krx_holidays(year: int) -> holidays.HolidayBase:
    import holidays  # on first use, not when the config is read: the package costs ~60 ms to import

    return holidays.financial_holidays("XKRX", years=year)


def holiday_name(day: dt.date) -> str | None:
    return _krx_holidays(day.year).get(day)


def is_trading_day(day: dt.date) -> bool:
    return day.weekday() < 5 and holiday_name(day) is None


def parse_windows(text: str) -> tuple[tuple[dt.time, dt.time], ...]:
    """``"23:50-00:10, 05:00-05:30"`` → time pairs (a window may cross midnight)."""
    windows = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        start, _, end = part.partition("-")
        windows.append((dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())))
    return tuple(windows)


class MarketCalendar:
    def __init__(self, maintenance: tuple[tuple[dt.time, dt.time], ...] = ()) -> None:
        self.maintenance = maintenance

    def in_maintenance(self, t: dt.time) -> bool:
        for start, end in self.maintenance:
            if (start <= t < end) if start <= end else (t >= start or t < end):
                return True
        return False

    def maintenance_until(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """The next regular-session open when ``now`` falls in a maintenance window, else None: what a
        query checks before asking KIS (a clock read and a comparison per window; the whole
        :meth:`state`, with its holiday look-ups for the next open, only when in a window)."""
        if not self.maintenance:
            return None
        now = (now or dt.datetime.now(KST)).astimezone(KST)
        return self.next_open(now) if self.in_maintenance(now.time()) else None

    def state(self, now: dt.datetime | None = None) -> MarketState:
        now = (now or dt.datetime.now(KST)).astimezone(KST)
        next_open = self.next_open(now)
        t = now.time()
        if self.in_maintenance(t):
            return MarketState(Phase.MAINTENANCE, now, next_open)
        if now.weekday() >= 5:
            return MarketState(Phase.WEEKEND, now, next_open)
        name = holiday_name(now.date())
        if name is not None:
            return MarketState(Phase.HOLIDAY, now, next_open, name)
        for start, end, phase in SESSIONS:
            if start <= t < end:
                return MarketState(phase, now, next_open)
        return MarketState(Phase.CLOSED, now, next_open)

    def next_open(self, now: dt.datetime) -> dt.datetime:
        day = now.date()
        if now.time() >= OPEN or not is_trading_day(day):
            day += dt.timedelta(days=1)
            while not is_trading_day(day):
                day += dt.timedelta(days=1)
        return dt.datetime.combine(day, OPEN, KST)
