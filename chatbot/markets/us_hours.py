"""US stock market hours as KIS serves them, computed from America/New_York (KIS_OVERSEAS.md §9).

A US trading day ``D`` (a New York date) has, in New York time: pre-market from 04:00, the regular
session 09:30–16:00 (13:00 on an early-close day) and after-market until 07:00 KST of the next Korean
day (KIS's end of it in both seasons: 17:00 ET in winter, 18:00 ET in summer). Before those, on the
Korean date ``D``, KIS runs its daytime session (주간거래, real accounts only) from 10:00 KST until
pre-market begins. Daylight saving is New York's (second Sunday of March to first Sunday of November)
and never a table here; Korea keeps no DST, so the regular session is 23:30–06:00 KST in winter and
22:30–05:00 KST in summer. Full-day closures and early closes come from the ``holidays`` package's
NYSE calendar, imported on first use.

No dependency on ``kis/`` or ``sim/``: the bot and the simulator both use this module.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import holidays

NEW_YORK: Final = ZoneInfo("America/New_York")
SEOUL: Final = ZoneInfo("Asia/Seoul")

PRE_MARKET_START: Final = dt.time(4, 0)  # ET
REGULAR_OPEN: Final = dt.time(9, 30)  # ET
REGULAR_CLOSE: Final = dt.time(16, 0)  # ET
EARLY_CLOSE: Final = dt.time(13, 0)  # ET, on the NYSE's half days
AFTER_MARKET_END_KST: Final = dt.time(7, 0)  # KST, the next Korean day
DAYTIME_START_KST: Final = dt.time(10, 0)
DAYTIME_END_KST: Final = dt.time(18, 0)
RESERVATION_START_KST: Final = dt.time(10, 0)
RESERVATION_LEAD: Final = dt.timedelta(minutes=10)  # accepted until 10 minutes before the open
RESERVATION_PAUSE_KST: Final = (dt.time(16, 30), dt.time(16, 45))  # KIS's settlement run

UNVERIFIED_CHOICES: Final[dict[str, str]] = {
    "daytime session (주간거래)": "10:00–18:00 KST, ending earlier when pre-market begins (order page; quote "
                                 "pages say 16:00)",
    "after-market end": "07:00 KST in both seasons, also after an early close (KIS order page)",
    "reservation window days": "Korean weekdays; an order met by a US holiday waits for the next trading day",
    "early closes": "13:00 ET on the days the holidays package marks as NYSE half days",
}


class UsPhase(StrEnum):
    DAYTIME = "daytime"  # 주간거래: KST daytime, orders only through KIS's daytime TRs (real accounts)
    PRE_MARKET = "pre_market"
    REGULAR = "regular"
    AFTER_MARKET = "after_market"
    CLOSED = "closed"  # a US trading day, outside every session
    WEEKEND = "weekend"
    HOLIDAY = "holiday"

    @property
    def trading(self) -> bool:
        """Whether US orders (KIS's regular order TR) are accepted and trades happen."""
        return self in (UsPhase.PRE_MARKET, UsPhase.REGULAR, UsPhase.AFTER_MARKET)


@dataclass(frozen=True, slots=True)
class UsSession:
    """One US trading day's sessions, as aware datetimes (compare or convert them freely)."""

    day: dt.date  # the New York date
    daytime_start: dt.datetime
    pre_open: dt.datetime
    open: dt.datetime
    close: dt.datetime
    after_close: dt.datetime
    early_close: str = ""  # the reason when the regular session ends at 13:00 ET

    @property
    def daytime_end(self) -> dt.datetime:
        return min(dt.datetime.combine(self.daytime_start.date(), DAYTIME_END_KST, SEOUL), self.pre_open)

    def phase_at(self, when: dt.datetime) -> UsPhase | None:
        if self.daytime_start <= when < self.daytime_end:
            return UsPhase.DAYTIME
        if self.pre_open <= when < self.open:
            return UsPhase.PRE_MARKET
        if self.open <= when < self.close:
            return UsPhase.REGULAR
        if self.close <= when < self.after_close:
            return UsPhase.AFTER_MARKET
        return None


@dataclass(frozen=True, slots=True)
class UsMarketState:
    phase: UsPhase
    now: dt.datetime
    session: UsSession  # the session ``now`` is in, else the next one
    holiday_name: str = ""  # when ``phase`` is HOLIDAY

    @property
    def next_open(self) -> dt.datetime:
        """The next regular open (the current session's when it has not opened yet)."""
        return self.session.open if self.session.open > self.now else next_session(self.now).open

    @property
    def next_close(self) -> dt.datetime:
        """The next regular close (the current session's until it has closed): the close an MOC or LOC
        order placed now would meet, were it taken."""
        return self.session.close if self.session.close > self.now else next_session(self.now).close

    @property
    def accepts_orders(self) -> bool:
        return self.phase.trading


@lru_cache(maxsize=32)
def _nyse(year: int, category: str) -> holidays.HolidayBase:
    import holidays  # 40 ms of imports: only when a US date is first asked about

    return holidays.financial_holidays("NYSE", years=year, categories=(category,))


def holiday_name(day: dt.date) -> str | None:
    """The NYSE full-day closure on ``day``, if any."""
    name = _nyse(day.year, "public").get(day)
    return str(name) if name is not None else None


def early_close_name(day: dt.date) -> str | None:
    """Why the NYSE closes at 13:00 ET on ``day``, if it does."""
    name = _nyse(day.year, "half_day").get(day)
    return str(name) if name is not None else None


def is_trading_day(day: dt.date) -> bool:
    return day.weekday() < 5 and holiday_name(day) is None


def session(day: dt.date) -> UsSession | None:
    """The sessions of New York date ``day``, or None when the market is closed all day."""
    if not is_trading_day(day):
        return None
    early = early_close_name(day) or ""
    after = dt.datetime.combine(day + dt.timedelta(days=1), AFTER_MARKET_END_KST, SEOUL)
    return UsSession(
        day=day,
        daytime_start=dt.datetime.combine(day, DAYTIME_START_KST, SEOUL),
        pre_open=dt.datetime.combine(day, PRE_MARKET_START, NEW_YORK),
        open=dt.datetime.combine(day, REGULAR_OPEN, NEW_YORK),
        close=dt.datetime.combine(day, EARLY_CLOSE if early else REGULAR_CLOSE, NEW_YORK),
        after_close=after,
        early_close=early,
    )


def next_session(after: dt.datetime) -> UsSession:
    """The first session whose regular open is later than ``after``."""
    day = after.astimezone(NEW_YORK).date()
    while True:
        s = session(day)
        if s is not None and s.open > after:
            return s
        day += dt.timedelta(days=1)


class UsCalendar:
    """Which US session is on. ``always_open`` makes every moment a regular session (tests)."""

    def __init__(self, always_open: bool = False) -> None:
        self.always_open = always_open

    def state(self, now: dt.datetime | None = None) -> UsMarketState:
        now = now or dt.datetime.now(SEOUL)
        if now.tzinfo is None:
            raise ValueError("a naive datetime has no place on two continents")
        korean_day = now.astimezone(SEOUL).date()
        for day in (korean_day - dt.timedelta(days=1), korean_day):
            s = session(day)
            phase = s.phase_at(now) if s is not None else None
            if s is not None and phase is not None:
                return UsMarketState(UsPhase.REGULAR if self.always_open else phase, now, s)
        upcoming = next_session(now)
        if self.always_open:
            return UsMarketState(UsPhase.REGULAR, now, upcoming)
        # Outside every session, the US day a Korean moment is about: the Korean date, or the day
        # before until that day's after-market would have ended (07:00 KST).
        local_now = now.astimezone(SEOUL)
        local = korean_day if local_now.time() >= AFTER_MARKET_END_KST else korean_day - dt.timedelta(days=1)
        if local.weekday() >= 5:
            return UsMarketState(UsPhase.WEEKEND, now, upcoming)
        name = holiday_name(local)
        if name is not None:
            return UsMarketState(UsPhase.HOLIDAY, now, upcoming, name)
        return UsMarketState(UsPhase.CLOSED, now, upcoming)

    def reservation_open(self, now: dt.datetime) -> bool:
        """Whether KIS takes a US reservation order now (§9: 10:00 KST until ten minutes before the
        nominal regular open of that Korean date, except 16:30–16:45, Korean weekdays)."""
        if self.always_open:
            return True
        local = now.astimezone(SEOUL)
        if local.weekday() >= 5:
            return False
        nominal_open = dt.datetime.combine(local.date(), REGULAR_OPEN, NEW_YORK)
        start = dt.datetime.combine(local.date(), RESERVATION_START_KST, SEOUL)
        pause_from, pause_to = (dt.datetime.combine(local.date(), t, SEOUL) for t in RESERVATION_PAUSE_KST)
        return start <= local < nominal_open - RESERVATION_LEAD and not pause_from <= local < pause_to

    def reservation_target(self, now: dt.datetime) -> UsSession:
        """The session whose regular open a reservation placed now is sent to."""
        return next_session(now)
