"""The trigger engine: conditional orders' triggers (stop-loss, take-profit, trailing stop, the two
legs of a bracket), judged on the trades of the same market-data feed as price alerts.

It is a second consumer of the alert engine's feed (:class:`~chatbot.alerts.feeds.AlertFeed`
counts subscriptions per consumer), with a book of its own built like the alerts' one
(:class:`~chatbot.alerts.book.AlertBook`: sorted thresholds per symbol, O(log n + crossed) a tick).
Each leg is one entry: ``order id * 2`` for the stop side (a trade at or below fires it), ``order id
* 2 + 1`` for the take side (at or above). When a leg crosses, the order's other leg leaves the book at
once, and both go to the owner of the orders (the service) together, which moves the order from
``armed`` to ``firing`` in one conditional update: one-cancels-other holds even when both legs are
crossed by one tick (a gap's high and low).

* Only trades the session gate lets through count (the regular session): the first regular trade
  after the open is judged at its price, whatever the pre-open did. Outside it nothing fires and
  trailing highs do not move; a KRX gap the feed came back from outside it still has the session's
  extremes made meanwhile judged, and what they crossed fires with the next regular trade.
* A trailing stop's level is ``high × (1 − percent)`` on the tick below; the high only rises, so the
  level does too. Raised levels are handed to ``on_trail`` in batches (persisted by the service).
* After a feed drop the alert engine's gap logic applies: the first trade after the reconnect fires
  what its price crosses, and the day's high and low made since the drop (their times from the
  trade) fire what they reached, in the order they were made; a trigger armed during the gap is judged
  only by the extremes made after the second it was armed in. A restart (or a feed taken over) assumes
  a gap from the feed's last stamp, and the orders armed since are judged the same way (their
  ``armed_at``); an order adopted from another replica, from its own arming; a trailing stop, from the last
  raise of its level too (``raised_at``: its row's ``updated_at``, stamped when the level is stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from chatbot.alerts.book import AlertBook
from chatbot.alerts.feeds import AlertFeed, trade_tr
from chatbot.alerts.gap import FeedGap, market_second
from chatbot.kis import protocol as p
from chatbot.kis.frames import Tick
from chatbot.kis.models import KST
from chatbot.kis.overseas_frames import UsTick
from chatbot.kis.realtime import Event

log = logging.getLogger(__name__)
# Fired orders' ids remembered so that an adoption pass never arms one again (the newest only: its row
# left "armed" in the very transaction the owner took it in, so only a pass that read the rows before
# that commit can still see it armed; kept for ever, the set grew by one id per order fired, for weeks).
TAKEN_KEPT = 10_000
STOP, TAKE = "stop", "take"


@dataclass(frozen=True, slots=True)
class ArmedTrigger:
    """What the engine needs of an armed conditional order."""

    order_id: int
    code: str
    stop: int | None  # a trade at or below fires (a trailing stop: its current level)
    take: int | None  # a trade at or above fires
    trail_percent: Decimal | None = None  # a trailing stop: the level follows the high
    high_water: int | None = None
    # When it was armed (epoch seconds; None: unknown): a gap assumed from earlier (a restart from the
    # feed's last stamp) must not judge it by extremes made before it existed (see assume_gap)
    armed_at: float | None = None
    # A trailing stop: when its level (``stop``) was last stored raised (epoch seconds; None: never). Judged
    # from then as from an arming: an extreme made before, above the level in force then, is no crossing
    raised_at: float | None = None


@dataclass(frozen=True, slots=True)
class Crossed:
    """A leg crossed by a trade: ``price`` at ``tick_time`` (HHMMSS, market time)."""

    order_id: int
    leg: str  # stop | take
    code: str
    price: int
    tick_time: str
    seen_at: float  # perf_counter when the trade arrived


@dataclass(slots=True)
class _Trail:
    percent: Decimal
    high: int
    level: int
    raised: float | None = None  # when the level last rose (epoch seconds): judged from then as from an arming


@dataclass(slots=True)
class _Arming:
    high: int = 0
    low: int = 2**62
    count: int = 0
    last: tuple[int, str] | None = None  # the last trade seen while arming


LevelOf = Callable[[int, Decimal], int]
OnCrossed = Callable[[list[Crossed]], Awaitable[None]]
OnTrail = Callable[[dict[int, tuple[int, int]]], Awaitable[None]]  # order id -> (high, level)


def trailing_level(high: int, percent: Decimal) -> int:
    """KRX: ``high`` less ``percent``, down to the share tick at that price."""
    raw = int(Decimal(high) * (100 - percent) / 100)
    return max(p.round_down_to_tick(raw), 1)


def is_us_key(code: str) -> bool:
    """A US realtime key (``DNASAAPL``: ``D`` + exchange + ticker), never a KRX code's shape."""
    return code[:1] == "D" and not code[1:4].isdigit()


def us_trailing_level(high: int, percent: Decimal) -> int:
    """US (prices in ten-thousandths of a dollar): ``high`` less ``percent``, down to the US tick at that
    price ($0.01 at or above $1, $0.0001 below)."""
    raw = int(Decimal(high) * (100 - percent) / 100)
    tick = 100 if raw >= 10_000 else 1
    return max(raw - raw % tick, 1)


def regular_session(tick_time: str) -> bool:
    """KRX's regular session by the trade's own time (09:00–15:20 KST)."""
    return "090000" <= tick_time < "152000"


class TriggerEngine:
    def __init__(self, feed: AlertFeed, on_crossed: OnCrossed, *, on_trail: OnTrail | None = None,
                 in_session: Callable[[str], bool] = regular_session, level_of: LevelOf = trailing_level,
                 trail_flush_seconds: float = 1.0, us_in_session: Callable[[], bool] = lambda: False) -> None:
        self.feed = feed
        self.us_in_session = us_in_session  # US trades (HDFSCNT0) fire only in the US regular session
        self.on_crossed = on_crossed
        self.on_trail = on_trail
        self.in_session = in_session
        self.level_of = level_of
        self.trail_flush_seconds = trail_flush_seconds
        self.book = AlertBook()
        self._orders: dict[int, ArmedTrigger] = {}
        self._per_code: dict[str, set[int]] = {}
        self._trails: dict[str, dict[int, _Trail]] = {}
        self._trail_dirty: dict[int, tuple[int, int]] = {}
        self._handed_over: dict[int, ArmedTrigger] = {}  # crossed, out of the book, not yet taken by the owner
        self._taken: dict[int, None] = {}  # handed over and taken (fired), the newest TAKEN_KEPT: never adopted again
        self.taken_kept = TAKEN_KEPT
        self._subscribed: set[str] = set()
        self._arming: dict[str, _Arming] = {}
        self.last_price: dict[str, int] = {}
        self._held: dict[str, list[Crossed]] = {}  # crossed in a gap the feed came back from after the session
        self._us_day: dict[str, tuple[str, int, int]] = {}  # US key -> (business date, day's high, low) last seen
        self._pending: deque[list[Crossed]] = deque()
        self._work = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._remove_listener: Callable[[], None] | None = None
        self._gap = FeedGap()
        self.crossed = 0  # legs crossed (both legs of a bracket crossed by one tick count twice)
        self.gap_trades = 0  # symbols' first trades after a gap judged (their day's high and low since it began)

    # -- lifecycle --------------------------------------------------------------------------------------
    async def start(self, armed: Sequence[ArmedTrigger]) -> None:
        """Listen to the feed (started by the alert engine), load the armed triggers, subscribe their symbols."""
        self._remove_listener = self.feed.add_listener(self._on_event)
        for trigger in armed:
            self._add(trigger)
        await asyncio.gather(*(self._ensure_subscribed(code) for code in sorted(self._per_code)))
        self._tasks = [asyncio.create_task(self._worker(), name="conditional-fire"),
                       asyncio.create_task(self._trail_loop(), name="conditional-trail")]
        log.info("trigger engine started", extra={"armed": len(self._orders), "symbols": len(self._subscribed)})

    async def stop(self, grace: float = 5.0) -> None:
        if self._tasks and not self._idle.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:  # the last raised levels; bounded: shutdown must finish (a level lost is only a level lower)
            await asyncio.wait_for(self.flush_trails(), grace)
        except Exception:
            log.warning("trailing levels not stored at shutdown", exc_info=True)
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        for code in list(self._subscribed):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.feed.unsubscribe(trade_tr(code), code), 2.0)
        self._subscribed.clear()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def __len__(self) -> int:
        return len(self._orders)

    def armed(self, order_id: int) -> ArmedTrigger | None:
        return self._orders.get(order_id)

    def knows(self, order_id: int) -> bool:
        """In the book, crossed and handed to the service, or fired from here."""
        return order_id in self._orders or order_id in self._handed_over or order_id in self._taken

    def order_ids(self) -> list[int]:
        return list(self._orders)

    def trail_state(self, order_id: int) -> tuple[int, int] | None:
        """A trailing stop's (high, level) as the engine holds it now."""
        trigger = self._orders.get(order_id)
        if trigger is None:
            return None
        trail = self._trails.get(trigger.code, {}).get(order_id)
        return (trail.high, trail.level) if trail else None

    # -- the book -------------------------------------------------------------------------------------------
    def _add(self, trigger: ArmedTrigger, *, in_gap: bool = True, new: bool = False) -> None:
        order_id, code = trigger.order_id, trigger.code
        if order_id in self._orders:
            return
        self._orders[order_id] = trigger
        self._per_code.setdefault(code, set()).add(order_id)
        stop = trigger.stop
        if trigger.trail_percent is not None:
            high = trigger.high_water or stop or 0
            level = max(self._level_of(trigger.code)(high, trigger.trail_percent), stop or 0)
            self._trails.setdefault(code, {})[order_id] = _Trail(trigger.trail_percent, high, level, trigger.raised_at)
            stop = level
        if stop is not None:
            self.book.add(order_id * 2, code, "below", stop)
        if trigger.take is not None:
            self.book.add(order_id * 2 + 1, code, "above", trigger.take)
        # ``new`` (just armed): noted also without a gap open, for one a drop noticed late opens (see FeedGap)
        if in_gap and (self._gap.start is not None or new):
            self._gap.note_armed(code, order_id, _market_second())

    def _drop(self, order_id: int) -> ArmedTrigger | None:
        trigger = self._orders.pop(order_id, None)
        if trigger is None:
            return None
        self.book.remove(order_id * 2)
        self.book.remove(order_id * 2 + 1)
        ids = self._per_code.get(trigger.code)
        if ids is not None:
            ids.discard(order_id)
            if not ids:
                del self._per_code[trigger.code]
        trails = self._trails.get(trigger.code)
        if trails is not None:
            trail = trails.pop(order_id, None)
            if not trails:
                del self._trails[trigger.code]
            if trail is not None:  # as it stands now (put back after a failed firing: its level kept)
                trigger = dataclasses.replace(trigger, stop=trail.level, high_water=trail.high, raised_at=trail.raised)
        return trigger

    # -- the hot path -------------------------------------------------------------------------------------
    def _level_of(self, code: str) -> LevelOf:
        return us_trailing_level if is_us_key(code) else self.level_of

    def _on_us_tick(self, tick: UsTick) -> None:
        """A US trade (HDFSCNT0, keyed ``DNASAAPL``): prices in ten-thousandths of a dollar, judged in the
        US regular session only. It carries the day's high and low but not their times: after a gap the
        first trade fires what a day's extreme *new since the last trade seen before the gap* crossed (it
        was made while the feed was down), as :meth:`_us_gap_extremes` says."""
        code = tick[0]
        if code not in self._subscribed:
            return
        price = int((tick.price * 10_000).to_integral_value())
        tick_time = tick.kst_time
        self.last_price[code] = price
        if not self.us_in_session():
            if code in self._gap.symbols:
                self._gap.forget(code)
            return
        # The day's extremes as of a regular-session trade only: a low made before the open (should KIS
        # count the pre-market in it) is then never taken for one made in a gap during the session.
        before = self._us_day.get(code)
        day = (tick.business_date, int((tick.high * 10_000).to_integral_value()),
               int((tick.low * 10_000).to_integral_value()))
        self._us_day[code] = day
        arming = self._arming.get(code)
        if arming is not None:
            arming.high, arming.low, arming.last = max(arming.high, price), min(arming.low, price), (price, tick_time)
        seen = time.perf_counter()
        fired: list[Crossed] = []
        if code in self._gap.symbols:
            fired += self._us_gap_extremes(code, before, day, tick_time, seen)
        self._raise_trails(code, price)
        fired += self._cross(code, self.book.on_price(code, price), price, tick_time, seen)
        if fired:
            self._enqueue(fired)

    def _us_gap_extremes(self, code: str, before: tuple[str, int, int] | None, day: tuple[str, int, int],
                         tick_time: str, seen: float) -> list[Crossed]:
        """A US symbol's first trade after a gap: a day's low below the one the last trade before the gap
        carried (same business day) was made while the feed was down, and fires the stops it reached; a
        new high likewise raises trailing stops and fires take-profits. Their order is unknown: the low
        is judged first (a bracket with both crossed fires its stop, as on a tie). Orders armed during the
        gap are set aside, as for KRX trades. Without a trade of the same day seen before the gap there is
        nothing to compare with: the first trade judges alone."""
        _start, armed_since = self._gap.take(code)
        self.gap_trades += 1
        if before is None or before[0] != day[0] or not day[0]:
            return []
        set_aside = [trigger for order_id, _armed_at in armed_since
                     if (trigger := self._drop(order_id)) is not None]
        fired: list[Crossed] = []
        _date, high, low = day
        if 0 < low < before[2]:
            fired += self._cross(code, self.book.on_low(code, low), low, tick_time, seen)
        if high > before[1] > 0:
            self._raise_trails(code, high)
            fired += self._cross(code, self.book.on_high(code, high), high, tick_time, seen)
        for trigger in set_aside:
            self._add(trigger)
        return fired

    def _on_event(self, event: Event) -> None:
        if type(event) is UsTick:
            self._on_us_tick(event)
            return
        if type(event) is not Tick:
            self._gap.on_event(event, self._subscribed)
            return
        code = event[0]
        if code not in self._subscribed:
            return
        price = int(event[2])
        tick_time = event[1]
        self.last_price[code] = price
        if not self.in_session(tick_time):
            if code in self._gap.symbols:
                # The feed came back after the session (15:20 and later): the day's extremes made in it
                # while the feed was down are judged now, and what they crossed fires with the next
                # trade in the session. Left for that trade, they were judged against the next day's
                # extremes instead, and a stop crossed before the close never fired.
                self._held.setdefault(code, []).extend(self._gap_extremes(code, event, time.perf_counter()))
            self._gap.saw(code, event)
            return
        arming = self._arming.get(code)
        if arming is not None:
            arming.high, arming.low, arming.last = max(arming.high, price), min(arming.low, price), (price, tick_time)
        seen = time.perf_counter()
        fired: list[Crossed] = self._held.pop(code, [])
        if code in self._gap.symbols:
            fired += self._gap_extremes(code, event, seen)
        self._gap.saw(code, event)
        self._raise_trails(code, price)
        fired += self._cross(code, self.book.on_price(code, price), price, tick_time, seen)
        if fired:
            self._enqueue(fired)

    def _cross(self, code: str, entries: list[int], price: int, tick_time: str, seen: float) -> list[Crossed]:
        crossed = []
        for entry in entries:
            order_id, leg = divmod(entry, 2)
            crossed.append(Crossed(order_id, TAKE if leg else STOP, code, price, tick_time, seen))
            self.crossed += 1
        for item in crossed:  # one-cancels-other: the order leaves the book whole
            trigger = self._drop(item.order_id)
            if trigger is not None:
                self._handed_over[item.order_id] = trigger
        return crossed

    def _raise_trails(self, code: str, price: int) -> None:
        trails = self._trails.get(code)
        if not trails:
            return
        now = 0.0
        for order_id, trail in trails.items():
            if price <= trail.high:
                continue
            trail.high = price
            level = self._level_of(code)(price, trail.percent)
            if level > trail.level:
                self.book.remove(order_id * 2)
                trail.level = level
                self.book.add(order_id * 2, code, "below", level)
                trail.raised = now = now or time.time()
            self._trail_dirty[order_id] = (trail.high, trail.level)

    def _enqueue(self, crossed: list[Crossed]) -> None:
        self._pending.append(crossed)
        self._idle.clear()
        self._work.set()

    def _gap_extremes(self, code: str, tick: Tick, seen: float) -> list[Crossed]:
        """The day's high and low made while the feed was down, in the order they were made."""
        new_high, new_low = self._gap.unseen_extremes(code, tick)
        gap_start, armed_since = self._gap.take(code)
        if gap_start is None:
            return []
        self.gap_trades += 1
        since = market_second(gap_start)
        extremes = []
        if tick.high_time >= since and self.in_session(tick.high_time) and new_high:
            extremes.append((tick.high_time, 1, tick.high))
        if tick.low_time >= since and self.in_session(tick.low_time) and new_low:
            extremes.append((tick.low_time, 0, tick.low))
        fired: list[Crossed] = []
        for at, is_high, price in sorted(extremes):
            # An order armed during the gap is set aside from an extreme made in the second it was armed in or
            # before (it may have come before the order existed), as the alert engine does per side: from that
            # extreme only (set aside whole, a stop armed after the day's high was missed by the low after it).
            set_aside = [trigger for order_id, armed_at in armed_since
                         if at <= armed_at and (trigger := self._drop(order_id)) is not None]
            if is_high:
                self._raise_trails(code, price)
                fired += self._cross(code, self.book.on_high(code, price), price, at, seen)
            else:
                fired += self._cross(code, self.book.on_low(code, price), price, at, seen)
            for trigger in set_aside:
                self._add(trigger)
        return fired

    # -- firing ---------------------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while self._pending:
                batch: list[Crossed] = []
                while self._pending and len(batch) < 100:
                    batch += self._pending.popleft()
                try:
                    await self.on_crossed(batch)
                except Exception:
                    # Put back what the owner could not take (it stays armed in its store, and the
                    # store's conditional update keeps a second firing from doing anything twice).
                    log.exception("could not fire crossed conditional orders; re-arming them",
                                  extra={"legs": len(batch)})
                    for order_id in {c.order_id for c in batch}:
                        trigger = self._handed_over.pop(order_id, None)
                        if trigger is not None:
                            self._add(trigger)
                else:
                    for order_id in {c.order_id for c in batch}:
                        self._handed_over.pop(order_id, None)
                        self._taken[order_id] = None
                    while len(self._taken) > self.taken_kept:
                        del self._taken[next(iter(self._taken))]
                await asyncio.sleep(0)
            if not self._pending:
                self._idle.set()

    async def _trail_loop(self) -> None:
        while True:
            await asyncio.sleep(self.trail_flush_seconds)
            try:
                await self.flush_trails()
            except Exception:
                log.exception("could not store trailing levels; trying again")

    async def flush_trails(self) -> None:
        if not self._trail_dirty or self.on_trail is None:
            return
        dirty, self._trail_dirty = self._trail_dirty, {}
        try:
            await self.on_trail(dirty)
        except BaseException:
            for order_id, value in dirty.items():  # kept for the next flush (newer values win)
                self._trail_dirty.setdefault(order_id, value)
            raise

    # -- subscriptions ------------------------------------------------------------------------------------
    def has_capacity_for(self, code: str) -> bool:
        return code in self._subscribed or (trade_tr(code), code) in self.feed.subscriptions \
            or len(self.feed.subscriptions) < self.feed.max_subscriptions

    async def _ensure_subscribed(self, code: str) -> None:
        if code not in self._subscribed:
            await self.feed.subscribe(trade_tr(code), code)
            self._subscribed.add(code)

    async def _release_if_unused(self, code: str) -> None:
        if code in self._subscribed and code not in self._per_code and code not in self._arming \
                and code not in self._held:
            self._subscribed.discard(code)
            self._gap.forget(code)
            self._us_day.pop(code, None)
            await self.feed.unsubscribe(trade_tr(code), code)

    # -- orders coming and going -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def arming(self, code: str) -> AsyncIterator[_Arming]:
        """While an order on ``code`` is being stored as armed: its symbol is on the feed and the trades
        seen meanwhile are noted (:meth:`arm` judges them), so a crossing in that instant still fires."""
        seen = self._arming.setdefault(code, _Arming())
        seen.count += 1
        try:
            await self._ensure_subscribed(code)
            yield seen
        finally:
            seen.count -= 1
            if not seen.count:
                self._arming.pop(code, None)
            if code not in self._per_code:
                with contextlib.suppress(Exception):
                    await self._release_if_unused(code)

    def arm(self, trigger: ArmedTrigger, seen: _Arming | None = None) -> None:
        """Into the book (inside :meth:`arming`); trades seen while it was stored are judged now."""
        self._add(trigger, new=True)
        if seen is not None:
            crossed = self._judge(trigger, seen)
            if crossed:
                self._enqueue(crossed)

    def _judge(self, trigger: ArmedTrigger, seen: _Arming) -> list[Crossed]:
        """Trades seen before ``trigger`` reached the book (their low, high and last): the leg they crossed."""
        if seen.last is None or trigger.order_id not in self._orders:
            return []
        _, tick_time = seen.last
        if trigger.trail_percent is not None:
            self._raise_trails(trigger.code, seen.high)
        stop = self.book.where(trigger.order_id * 2)
        if stop is not None and seen.low <= stop[2]:
            entry, price = trigger.order_id * 2, seen.low
        elif trigger.take is not None and seen.high >= trigger.take:
            entry, price = trigger.order_id * 2 + 1, seen.high
        else:
            return []
        self.book.remove(entry)
        return self._cross(trigger.code, [entry], price, tick_time, time.perf_counter())

    async def adopt(self, triggers: Sequence[ArmedTrigger], since: float,
                    seen: Mapping[str, Sequence[int]] | None = None) -> list[int]:
        """Orders another replica armed (stored at or after ``since``, epoch seconds): their symbols on the
        feed, into the book; the first trade of each symbol checks the day's high and low made since then,
        as after a feed gap, and ``seen`` (per symbol, the prices of trades this replica saw since then) is
        judged now: a crossing before this replica knew of them still fires (once: the service's
        conditional update). Returns the ids added (those already known are skipped)."""
        fresh = [t for t in triggers if not self.knows(t.order_id)]
        if not fresh:
            return []
        codes = {t.code for t in fresh}
        for code in sorted(codes):
            await self._ensure_subscribed(code)
        # Judged from ``since`` as from an arming then (its replica's price check came a little earlier than its
        # storing), never from before it: not when the gap is open from earlier (a drop, a restart, an order on
        # its symbol adopted before), nor when an order adopted next moves the gap's start back.
        for trigger in fresh:
            self._add(dataclasses.replace(trigger, armed_at=since), in_gap=False)
        self._assume(since, codes)
        now = _market_second()
        crossed: list[Crossed] = []
        if seen:
            for trigger in fresh:
                prices = seen.get(trigger.code)
                open_now = self.us_in_session() if is_us_key(trigger.code) else self.in_session(now)
                if prices and open_now:
                    crossed += self._judge(trigger, _Arming(max(prices), min(prices), 0, (prices[-1], now)))
        if crossed:
            self._enqueue(crossed)
        return [t.order_id for t in fresh]

    def unwatched_since(self) -> float | None:
        """When the feed's open gap began (some symbol's first trade since is still to come), else None."""
        return self._gap.start

    def assume_gap(self, since: float) -> None:
        """Treat the feed of every subscribed symbol as down since ``since`` (a restart from the feed's last
        stamp; the feed taken over from a replica last seen alive then): the first trade of each fires what the
        day's high or low crossed since. An order armed after ``since`` (the bot went down within a stamping
        period of its arming, or with the feed down since) is set aside from the extremes made before it was
        armed, as in a drop (one of its very second still counts): a stop must not sell on a low made before
        it existed. A trailing stop whose level was raised after ``since`` likewise, from the raise: the low
        made before it was above the level in force then."""
        self._assume(since, None)

    def _assume(self, since: float, codes: set[str] | None) -> None:
        """A gap from ``since`` on ``codes`` (every subscribed symbol if None). Its start is the earliest of the
        open gap's and ``since``; every order in the book armed (or its trailing level raised) after that start is
        set aside from the extremes made before, on the symbols it covers: all of them when the start moves back
        (a later order adopted before an earlier one on its symbol was judged from the earlier's start), else
        ``codes`` (an order adopted, its symbol's first trade since taken, then another adopted from earlier on it:
        set aside at the first only, it was judged again from the earlier start)."""
        start = self._gap.start
        begin = since if start is None else min(start, since)
        everywhere = codes is None or (start is not None and since < start)
        ids = list(self._orders) if everywhere else [i for code in codes or () for i in self._per_code.get(code, ())]
        for order_id in ids:
            trigger = self._orders[order_id]
            trail = self._trails.get(trigger.code, {}).get(order_id)
            raised = trail.raised if trail is not None else trigger.raised_at
            at = max((t for t in (trigger.armed_at, raised) if t is not None), default=None)
            if at is not None and at >= begin:
                self._gap.remember_armed(at, trigger.code, order_id)
        self._gap.assume(begin, self._subscribed if codes is None else codes & self._subscribed)

    async def disarm(self, order_id: int) -> None:
        """Out of the book (cancelled, expired); its symbol off the feed when nothing else needs it."""
        trigger = self._drop(order_id)
        self._trail_dirty.pop(order_id, None)
        if trigger is not None:
            await self._release_if_unused(trigger.code)

    async def release_fired(self, codes: Sequence[str]) -> None:
        """Symbols of orders that fired: off the feed when nothing else on them is armed."""
        for code in set(codes):
            with contextlib.suppress(Exception):
                await self._release_if_unused(code)


def _market_second() -> str:
    return dt.datetime.now(KST).strftime("%H%M%S")


__all__ = ["STOP", "TAKE", "ArmedTrigger", "Crossed", "TriggerEngine", "regular_session", "trailing_level"]
