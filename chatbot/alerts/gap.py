"""A feed gap, as the alert engine and the conditional orders' trigger engine both judge it.

While the feed is down trades go unseen. When it is back, the first trade of each subscribed symbol
carries the day's high and low with their times: whatever they crossed since the feed dropped fires
then. An item armed during the gap is set aside for that check (its crossing may have come before
it). A gap is over when every symbol has had its first trade (or left the feed)."""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Iterable

from chatbot.kis.frames import Tick
from chatbot.kis.models import KST
from chatbot.kis.realtime import Disconnected, Event, Reconnected

Armed = list[tuple[int, str]]  # (item id, HHMMSS market second it was armed in)
# How long an arming made while the feed looks up is remembered: a drop is noticed up to the ping timeout
# (40 s) after the server was last heard, and the gap then starts back there (see FeedGap.on_event).
RECENT_ARMS = 120.0


def market_second(start: float, now: float | None = None) -> str:
    """The gap's start as a trade's time of day is compared with (HHMMSS, Korean time): a gap that began
    on an earlier Korean day than ``now`` (epoch seconds, default the present) covers all of today, so
    ``"000000"``. (A gap opened at 23:59:30 KST judged at 00:00:30 compared "000030" < "235930": today's
    extremes were taken for older than the gap and the crossing they made was missed.)"""
    began = dt.datetime.fromtimestamp(start, KST)
    if began.date() < dt.datetime.fromtimestamp(time.time() if now is None else now, KST).date():
        return "000000"
    return began.strftime("%H%M%S")


def _second_before(second: str) -> str:
    """The HHMMSS market second before ``second`` (``"000000"`` stays)."""
    try:
        t = dt.datetime.strptime(second, "%H%M%S")
    except ValueError:
        return second
    return second if second == "000000" else (t - dt.timedelta(seconds=1)).strftime("%H%M%S")


class FeedGap:
    __slots__ = ("armed", "assumed", "last", "loaded", "recent", "start", "symbols")

    def __init__(self) -> None:
        self.start: float | None = None  # wall clock when the feed dropped; None: no gap
        self.symbols: set[str] = set()  # symbols whose first trade after the gap is still to come
        self.armed: dict[str, Armed] = {}  # per symbol: what was armed during the gap
        # armed lately while no gap was open (epoch seconds, symbol, item id, market second): a drop
        # noticed late starts the gap before them
        self.recent: deque[tuple[float, str, int, str]] = deque()
        # True when the gap was (also) assumed (a feed taken over, items adopted): extremes this process saw
        # live may be what crossed items that reached it later, so they are judged too
        self.assumed = False
        # stored lately by an earlier process, loaded at start-up (epoch seconds, symbol, item id, market
        # second): a gap assumed from that process's last stamp sets them aside (see assume)
        self.loaded: list[tuple[float, str, int, str]] = []
        # code -> the last trade seen (gap or not): the day's extremes it carried were judged live
        self.last: dict[str, Tick] = {}

    def on_event(self, event: Event, subscribed: Iterable[str]) -> None:
        """The feed's state news: a drop opens the gap, a reconnect waits for each symbol's first trade."""
        if isinstance(event, Disconnected) and self.start is None:
            # From when the server was last heard: what it sent after that was lost, though the drop may
            # have been noticed much later (a silent one, by the ping timeout). Anything heard had its
            # crossings judged already; an extreme in that very second counts (one-second resolution).
            now = time.time()
            start = self.start = now if event.last_heard is None else min(now, event.last_heard)
            # What was armed after that (the connection already dead, the drop not yet noticed) is set aside
            # like anything armed during the gap: an extreme of that stretch may have come before it.
            # (Set aside only from extremes of an earlier second than its arming: one of the same second, the
            # connection not yet known dead, is taken to have come after it, as before the gap began there.)
            for at, code, item_id, second in self.recent:
                if at >= start:
                    self.armed.setdefault(code, []).append((item_id, _second_before(second)))
            self.recent.clear()
        elif isinstance(event, Reconnected):
            self.symbols = set(subscribed)
            if not self.symbols:
                self.close()

    def assume(self, since: float, codes: Iterable[str]) -> None:
        """Treat ``codes`` as unseen since ``since`` (a feed taken over, items adopted from elsewhere, a
        restart from the feed's last stamp): what was armed after ``since`` is set aside, as in a drop."""
        self.start = since if self.start is None else min(self.start, since)
        self.assumed = True
        # (An extreme of the very second one was armed in is taken to have come after it, as for a drop.)
        for at, code, item_id, second in (*self.recent, *self.loaded):
            if at >= since:
                self.armed.setdefault(code, []).append((item_id, _second_before(second)))
        self.loaded.clear()
        self.symbols |= set(codes)
        if not self.symbols:
            self.close()

    def note_armed(self, code: str, item_id: int, second: str) -> None:
        """An item newly armed on ``code`` in the market ``second``: set aside at its symbol's first trade after
        the gap open now, or after one a drop noticed later opens from before this moment."""
        if self.start is not None:
            self.armed.setdefault(code, []).append((item_id, second))
            return
        now = time.time()
        recent = self.recent
        while recent and recent[0][0] < now - RECENT_ARMS:
            recent.popleft()
        recent.append((now, code, item_id, second))

    def remember_armed(self, at: float, code: str, item_id: int) -> None:
        """An item armed at ``at`` (epoch seconds) before this process knew of it (loaded at start-up, adopted
        from another replica; a trailing stop's level raised then): set aside if a gap assumed next (a
        restart's, a takeover's, an adoption's) begins before it, from the extremes made before it."""
        self.loaded.append((at, code, item_id, market_second(at)))

    def saw(self, code: str, tick: Tick) -> None:
        """``tick`` was judged live (its day's high and low against what was armed then)."""
        self.last[code] = tick

    def unseen_extremes(self, code: str, tick: Tick) -> tuple[bool, bool]:
        """Whether ``tick``'s day high and low (the first trade after the gap) are not the ones the last trade seen
        already carried. Those were judged live, against what was armed then: made before the gap (though maybe
        in its first second: one-second resolution), they must not cross what was armed after them. A gap
        (also) assumed judges them anyway: items adopted from elsewhere were not armed here when they were seen.
        Asked before :meth:`take`, which may close the gap."""
        seen = None if self.assumed else self.last.get(code)
        if seen is None:
            return True, True
        return ((tick.high, tick.high_time) != (seen.high, seen.high_time),
                (tick.low, tick.low_time) != (seen.low, seen.low_time))

    def take(self, code: str) -> tuple[float | None, Armed]:
        """``code``'s first trade after the gap: the gap's start and what was armed on it meanwhile."""
        start = self.start
        armed = self.armed.pop(code, [])
        self.forget(code)
        return start, armed

    def forget(self, code: str) -> None:
        """``code`` will have no first trade to judge (it left the feed, or its feed has no extremes)."""
        self.last.pop(code, None)
        if code in self.symbols:
            self.symbols.discard(code)
            self.armed.pop(code, None)
            if not self.symbols:
                self.close()

    def close(self) -> None:
        self.start = None
        self.assumed = False
        self.symbols = set()
        self.armed.clear()
