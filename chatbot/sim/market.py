"""The simulator's market: the symbol directory as its universe and a seeded price process on KRX ticks.

Every KRX symbol of the directory quotes and trades. A symbol's state is made on first use, and only
symbols in play (asked about, traded, subscribed to, restored) are stepped: a market of 3,800
listings costs what the handful in use cost. Each symbol draws from its own ``random.Random``
seeded by ``(seed, code)``, so the price path of one symbol does not depend on which others exist or
were stepped. Prices stay on the KRX tick grid and within ±30 % of the day's base price.

A symbol's first base price is the master file's 기준가 when the directory has one (a master
downloaded from KIS: prices then look like the market); otherwise it is drawn from the seed, in a
range typical of its kind (shares, their preferred shares below the common, ETFs, ETNs). History
before a symbol's first day is synthesised backwards from that price, deterministically; days the
simulator lived through are recorded as they close.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from chatbot.kis import protocol as p
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.symbols import Kind, Symbol

HISTORY_DAYS = 3 * 365  # synthetic history before a symbol's first day
STEP_VOLATILITY = 0.0015  # log-return standard deviation per market step
# First base prices drawn from the seed (won, log-uniform) when the master gives none.
PRICE_RANGES: dict[Kind, tuple[int, int]] = {
    Kind.STOCK: (1_500, 600_000), Kind.ETF: (3_000, 100_000), Kind.ETN: (3_000, 30_000), Kind.OTHER: (2_000, 12_000),
}
PREFERRED_DISCOUNT = (0.55, 0.95)  # a preferred share's first price against its common's
FUND_KINDS = frozenset({Kind.ETF, Kind.ETN})  # tick by the fund rule (protocol.fund_tick_size), not the share table

Instrument = Symbol  # what the simulator lists: the directory's symbols


@dataclass(frozen=True, slots=True)
class Trade:
    """One simulated trade: what the WebSocket feed publishes and what resting orders match on."""

    code: str
    price: int
    volume: int
    time: str  # HHMMSS
    buyer_initiated: bool


@dataclass(slots=True)
class DailyBar:
    date: dt.date
    open: int
    high: int
    low: int
    close: int
    volume: int
    value: int


@dataclass(slots=True)
class SymbolState:
    instrument: Symbol
    base: int  # base price of the day (previous close)
    price: int
    open: int
    high: int
    low: int
    volume: int = 0
    value: int = 0
    sell_count: int = 0
    buy_count: int = 0
    sell_volume: int = 0
    buy_volume: int = 0
    open_time: str = "000000"  # set by the day's first trade
    high_time: str = "000000"
    low_time: str = "000000"
    last_time: str = "000000"
    prev_volume: int = 0
    listed_shares: int = 0
    steps: int = 0  # trades drawn so far; with (seed, code) it fixes where a restored path continues
    since: dt.date = dt.date.min  # the symbol's first simulated day (its synthetic history ends before)
    initial: int = 0  # its first base price (where the synthetic history ends)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def limits(self) -> tuple[int, int]:
        return p.price_limits(self.base)

    def tick_for(self, price: int) -> int:
        """The tick an order price must sit on: ETFs and ETNs by the fund rule, others by the share table.
        (The price process stays on the share grid, which is also on the fund grid.)"""
        return instrument_tick(self.instrument, price)


def instrument_tick(instrument: Symbol, price: int) -> int:
    return p.fund_tick_size(price) if instrument.kind in FUND_KINDS else p.tick_size(price)


def load_instruments() -> list[Symbol]:
    """The bundled KRX symbols (the simulator's universe unless it is given another directory)."""
    return list(SymbolDirectory.bundled().symbols("KRX"))


class Market:
    """Price process, day rollover and bar history for every KRX symbol of the directory."""

    def __init__(self, seed: int, today: dt.date,
                 instruments: SymbolDirectory | Iterable[Symbol] | None = None) -> None:
        self.seed = seed
        self.first_day = today
        self.today = today
        if isinstance(instruments, SymbolDirectory):
            self.directory = instruments
        else:
            self.directory = SymbolDirectory.bundled() if instruments is None else SymbolDirectory(instruments)
        self._states: dict[str, SymbolState] = {}
        self._active: dict[str, SymbolState] = {}  # stepped every tick, in the order they came into play
        self.symbols: Mapping[str, SymbolState] = _States(self)
        self._live_bars: dict[str, list[DailyBar]] = {}
        self._history_cache: dict[str, list[DailyBar]] = {}
        self._range_cache: dict[str, tuple[Any, DailyBar | None, DailyBar | None]] = {}
        self._listeners: list[Callable[[Trade], None]] = []

    # -- universe -----------------------------------------------------------------------------------
    def listing(self, code: str) -> Symbol | None:
        """The listed symbol of a code: six characters, or an ETN as ``Q`` + its code."""
        text = code.strip().upper()
        by_code = self.directory.index("KRX").by_code
        found = by_code.get(text)
        if found is None and len(text) == 7 and text[0] == "Q":
            found = by_code.get(text[1:])
            return found if found is not None and found.is_etn else None
        return found

    def quoted(self, code: str) -> SymbolState | None:
        """The state behind a code as KIS's quotation endpoints take it: an ETN only with its ``Q``
        prefix (KIS_API.md §4.3, ``FID_INPUT_ISCD``); its bare code is unknown there."""
        listing = self.listing(code)
        if listing is None or listing.is_etn != code.strip().upper().startswith("Q"):
            return None
        return self.get(listing.code)

    def _state(self, code: str, activate: bool) -> SymbolState | None:
        state = self._states.get(code)
        if state is None:
            listing = self.listing(code)
            if listing is None:
                return None
            state = self._states.get(listing.code) or self._new_symbol(listing)
            self._states[listing.code] = state
        if activate and state.instrument.code not in self._active:
            self._active[state.instrument.code] = state
        return state

    # -- construction -------------------------------------------------------------------------
    def _new_symbol(self, inst: Symbol) -> SymbolState:
        price = self._initial_price(inst)
        rng = random.Random(f"{self.seed}:{inst.code}")
        state = SymbolState(instrument=inst, base=price, price=price, open=price, high=price, low=price, rng=rng,
                            since=self.today, initial=price)
        state.listed_shares = rng.randint(20, 6_000) * 1_000_000 // max(1, price // 1000)
        state.prev_volume = rng.randint(50_000, 5_000_000)
        return state

    def _initial_price(self, inst: Symbol) -> int:
        """The first base price: the master's 기준가, else drawn from the seed for the symbol's kind."""
        if inst.base_price > 0:
            return max(1, p.round_down_to_tick(inst.base_price))
        rng = random.Random(f"{self.seed}:{inst.code}:init")
        if inst.kind is Kind.PREFERRED:
            common = self.listing(inst.code[:5] + "0")
            if common is not None and common.kind is Kind.STOCK:
                discount = rng.uniform(*PREFERRED_DISCOUNT)
                return max(1, p.round_down_to_tick(int(self._initial_price(common) * discount)))
        low, high = PRICE_RANGES.get(inst.kind, PRICE_RANGES[Kind.STOCK])
        return p.round_down_to_tick(int(math.exp(rng.uniform(math.log(low), math.log(high)))))

    def reference_price(self, inst: Symbol) -> int:
        """Today's base price of a listing, without bringing it into play (the master files' 기준가)."""
        state = self._states.get(inst.code)
        return state.base if state is not None else self._initial_price(inst)

    # -- queries --------------------------------------------------------------------------------
    def get(self, code: str) -> SymbolState | None:
        """The state of a listed code (made on first use), which is in play from now on."""
        return self._state(code, activate=True)

    def _in_play(self, code: str) -> SymbolState:
        state = self._state(code, activate=True)
        if state is None:
            raise KeyError(code)
        return state

    def add_listener(self, callback: Callable[[Trade], None]) -> None:
        self._listeners.append(callback)

    # -- price process --------------------------------------------------------------------------
    def step(self, code: str, now_hms: str) -> Trade:
        """Advance one symbol by one trade and notify listeners."""
        s = self._in_play(code)
        rng = s.rng
        s.steps += 1
        ret = rng.gauss(0.0, STEP_VOLATILITY)
        target = s.price * math.exp(ret)
        tick = p.tick_size(int(target))
        low_tick = math.floor(target / tick) * tick
        frac = (target - low_tick) / tick
        new_price = int(low_tick + (tick if rng.random() < frac else 0))
        lower, upper = s.limits
        new_price = min(max(new_price, lower), upper)
        volume = rng.randint(1, 300) * (1 if s.price > 100_000 else 10)
        buyer = rng.random() < 0.5
        return self._record_trade(s, new_price, volume, now_hms, buyer)

    def step_all(self, now_hms: str) -> list[Trade]:
        """One trade for every symbol in play."""
        return [self.step(code, now_hms) for code in list(self._active)]

    def set_price(self, code: str, price: int, now_hms: str, volume: int = 1) -> Trade:
        """Force a trade at ``price`` (test control). The price is clamped to the daily limits and tick."""
        s = self._in_play(code)
        lower, upper = s.limits
        price = min(max(p.round_down_to_tick(price), lower), upper)
        return self._record_trade(s, price, volume, now_hms, price >= s.price)

    def _record_trade(self, s: SymbolState, price: int, volume: int, hms: str, buyer: bool) -> Trade:
        if s.volume == 0:
            s.open = s.high = s.low = price
            s.open_time = s.high_time = s.low_time = hms
        if price > s.high:
            s.high, s.high_time = price, hms
        if price < s.low:
            s.low, s.low_time = price, hms
        s.price = price
        s.volume += volume
        s.value += volume * price
        s.last_time = hms
        if buyer:
            s.buy_count += 1
            s.buy_volume += volume
        else:
            s.sell_count += 1
            s.sell_volume += volume
        trade = Trade(s.instrument.code, price, volume, hms, buyer)
        for listener in self._listeners:
            listener(trade)
        return trade

    def roll_day(self, new_day: dt.date) -> None:
        """Close the current day: record its bar, make the close the new base price."""
        if new_day <= self.today:
            return
        for code, s in self._states.items():
            if s.volume:
                self._live_bars.setdefault(code, []).append(
                    DailyBar(self.today, s.open, s.high, s.low, s.price, s.volume, s.value))
            s.prev_volume = s.volume or s.prev_volume
            s.base = s.open = s.high = s.low = s.price
            s.volume = s.value = s.sell_count = s.buy_count = s.sell_volume = s.buy_volume = 0
        self.today = new_day

    # -- history ------------------------------------------------------------------------------
    def _synthetic_history(self, s: SymbolState) -> list[DailyBar]:
        """Weekday bars before the symbol's first simulated day, oldest first, ending at its first base price."""
        code = s.instrument.code
        cached = self._history_cache.get(code)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:{code}:history")
        bars: list[DailyBar] = []
        close = s.initial or s.base
        day = s.since
        for _ in range(HISTORY_DAYS):
            day -= dt.timedelta(days=1)
            if day.weekday() >= 5:
                continue
            ret = rng.gauss(0.0, 0.018)
            open_ = _snap(close * math.exp(rng.gauss(0.0, 0.006)))
            high = max(open_, close) + p.tick_size(close) * rng.randint(0, 6)
            low = max(1, min(open_, close) - p.tick_size(close) * rng.randint(0, 6))
            low = p.round_up_to_tick(low)
            volume = int(s.prev_volume * rng.uniform(0.4, 1.8))
            bars.append(DailyBar(day, open_, high, low, close, volume, volume * close))
            close = _snap(close / math.exp(ret))
        bars.reverse()
        self._history_cache[code] = bars
        return bars

    def daily_bars(self, code: str) -> list[DailyBar]:
        """Every daily bar, oldest first, today's (partial) bar last when anything traded."""
        s = self._in_play(code)
        bars = list(self._synthetic_history(s)) + list(self._live_bars.get(s.instrument.code, ()))
        if s.volume:
            bars.append(DailyBar(self.today, s.open, s.high, s.low, s.price, s.volume, s.value))
        return bars

    def bars(self, code: str, period: str, start: dt.date, end: dt.date) -> list[DailyBar]:
        """Bars of ``period`` (D, W, M, Y) within [start, end], newest first, at most 100."""
        daily = [b for b in self.daily_bars(code) if start <= b.date <= end]
        if period == "D":
            grouped = daily
        else:
            key: Callable[[dt.date], Any] = {
                "W": lambda d: d.isocalendar()[:2],
                "M": lambda d: (d.year, d.month),
                "Y": lambda d: d.year,
            }[period]
            grouped = []
            for bar in daily:
                if grouped and key(grouped[-1].date) == key(bar.date):
                    g = grouped[-1]
                    grouped[-1] = DailyBar(bar.date, g.open, max(g.high, bar.high), min(g.low, bar.low), bar.close,
                                           g.volume + bar.volume, g.value + bar.value)
                else:
                    grouped.append(DailyBar(bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.value))
        return list(reversed(grouped))[: p.CHART_MAX_BARS]

    def fifty_two_week(self, code: str) -> tuple[int, dt.date, int, dt.date]:
        """(high, its date, low, its date) over the last 250 trading days, today included."""
        s = self._in_play(code)
        code = s.instrument.code
        key = (code, self.today, len(self._live_bars.get(code, ())))
        cached = self._range_cache.get(code)
        if cached is None or cached[0] != key:
            past = (self._synthetic_history(s) + self._live_bars.get(code, []))[-249:]
            hi = max(past, key=lambda b: b.high) if past else None
            lo = min(past, key=lambda b: b.low) if past else None
            cached = (key, hi, lo)
            self._range_cache[code] = cached
        _, hi, lo = cached
        high, high_day = (hi.high, hi.date) if hi else (s.price, self.today)
        low, low_day = (lo.low, lo.date) if lo else (s.price, self.today)
        if s.volume and s.high > high:
            high, high_day = s.high, self.today
        if s.volume and s.low < low:
            low, low_day = s.low, self.today
        return high, high_day, low, low_day

    def earliest_date(self) -> dt.date:
        """The first day of the synthetic history of symbols that came into play on the first day."""
        day = self.first_day - dt.timedelta(days=HISTORY_DAYS)
        while day.weekday() >= 5:
            day += dt.timedelta(days=1)
        return min(day, self.first_day)

    # -- persistence ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The symbols in play (the others are as their seed makes them) and the recorded days."""
        return {
            "seed": self.seed,
            "first_day": self.first_day.isoformat(),
            "today": self.today.isoformat(),
            "symbols": {
                code: {
                    "base": s.base, "price": s.price, "open": s.open, "high": s.high, "low": s.low,
                    "volume": s.volume, "value": s.value, "prev_volume": s.prev_volume, "steps": s.steps,
                    "times": [s.open_time, s.high_time, s.low_time, s.last_time],
                    "since": s.since.isoformat(), "initial": s.initial,
                }
                for code, s in self._active.items()
            },
            "live_bars": {
                code: [[b.date.isoformat(), b.open, b.high, b.low, b.close, b.volume, b.value] for b in bars]
                for code, bars in self._live_bars.items()
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.first_day = dt.date.fromisoformat(data["first_day"])
        self.today = dt.date.fromisoformat(data["today"])
        self._history_cache.clear()
        self._range_cache.clear()
        for code, d in data["symbols"].items():
            s = self.get(code)
            if s is None:  # no longer listed
                continue
            s.base, s.price, s.open, s.high, s.low = d["base"], d["price"], d["open"], d["high"], d["low"]
            s.volume, s.value, s.prev_volume = d["volume"], d["value"], d["prev_volume"]
            s.steps = d.get("steps", 0)
            s.open_time, s.high_time, s.low_time, s.last_time = d.get("times", ["000000"] * 4)
            s.since = dt.date.fromisoformat(d["since"]) if "since" in d else self.first_day
            s.initial = d.get("initial") or self._initial_price(s.instrument)
            # A restored path continues deterministically from (seed, code, steps), not from the
            # generator's internal state (which would be 5 KB a symbol in every snapshot).
            s.rng = random.Random(f"{self.seed}:{code}:{s.steps}")
        self._live_bars = {
            code: [DailyBar(dt.date.fromisoformat(r[0]), *r[1:]) for r in rows]
            for code, rows in data.get("live_bars", {}).items()
        }


class _States(Mapping[str, SymbolState]):
    """Every listed symbol's state by code, made on first access (reading one does not put it in
    play: iterating the whole universe must not make every symbol trade each tick)."""

    def __init__(self, market: Market) -> None:
        self._market = market

    def __getitem__(self, code: str) -> SymbolState:
        state = self._market._state(code, activate=False)
        if state is None:
            raise KeyError(code)
        return state

    def __iter__(self) -> Iterator[str]:
        return (s.code for s in self._market.directory.symbols("KRX"))

    def __len__(self) -> int:
        return len(self._market.directory)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self._market.listing(code) is not None


def _snap(value: float) -> int:
    return max(1, p.round_down_to_tick(max(1, int(value))))
