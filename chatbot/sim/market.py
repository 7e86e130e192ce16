"""The simulator's market: a bundled symbol list and a seeded price process on KRX ticks.

Each symbol draws from its own ``random.Random`` seeded by ``(seed, code)``, so the price path of
one symbol does not depend on which others exist or were stepped. Prices stay on the KRX tick
grid and within ±30 % of the day's base price. History before the simulator's first day is
synthesised backwards from the first base price, deterministically; days the simulator lived
through are recorded as they close.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from chatbot.kis import protocol as p

HISTORY_DAYS = 3 * 365  # synthetic history before the simulator's first day
STEP_VOLATILITY = 0.0015  # log-return standard deviation per market step


@dataclass(frozen=True, slots=True)
class Instrument:
    code: str
    name_ko: str
    name_en: str
    market: str  # KOSPI | KOSDAQ


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
    instrument: Instrument
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
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def limits(self) -> tuple[int, int]:
        return p.price_limits(self.base)


def load_instruments() -> list[Instrument]:
    """The bundled KRX symbol list (code, Korean name, English name, market)."""
    text = resources.files("chatbot.data").joinpath("krx_symbols.csv").read_text(encoding="utf-8")
    return [Instrument(r["code"], r["name_ko"], r["name_en"], r["market"]) for r in csv.DictReader(text.splitlines())]


class Market:
    """Price process, day rollover and bar history for every bundled symbol."""

    def __init__(self, seed: int, today: dt.date, instruments: list[Instrument] | None = None) -> None:
        self.seed = seed
        self.first_day = today
        self.today = today
        self.symbols: dict[str, SymbolState] = {}
        self._live_bars: dict[str, list[DailyBar]] = {}
        self._history_cache: dict[str, list[DailyBar]] = {}
        self._range_cache: dict[str, tuple[Any, DailyBar | None, DailyBar | None]] = {}
        self._listeners: list[Callable[[Trade], None]] = []
        for inst in instruments if instruments is not None else load_instruments():
            self.symbols[inst.code] = self._new_symbol(inst)

    # -- construction -------------------------------------------------------------------------
    def _new_symbol(self, inst: Instrument) -> SymbolState:
        price = self._initial_price(inst.code)
        rng = random.Random(f"{self.seed}:{inst.code}")
        state = SymbolState(instrument=inst, base=price, price=price, open=price, high=price, low=price, rng=rng)
        state.listed_shares = rng.randint(20, 6_000) * 1_000_000 // max(1, price // 1000)
        state.prev_volume = rng.randint(50_000, 5_000_000)
        return state

    def _initial_price(self, code: str) -> int:
        """The first base price: log-uniform between 1,500 and 600,000 won, on the tick grid."""
        rng = random.Random(f"{self.seed}:{code}:init")
        return p.round_down_to_tick(int(math.exp(rng.uniform(math.log(1_500), math.log(600_000)))))

    # -- queries --------------------------------------------------------------------------------
    def get(self, code: str) -> SymbolState | None:
        return self.symbols.get(code)

    def add_listener(self, callback: Callable[[Trade], None]) -> None:
        self._listeners.append(callback)

    # -- price process --------------------------------------------------------------------------
    def step(self, code: str, now_hms: str) -> Trade:
        """Advance one symbol by one trade and notify listeners."""
        s = self.symbols[code]
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
        return [self.step(code, now_hms) for code in self.symbols]

    def set_price(self, code: str, price: int, now_hms: str, volume: int = 1) -> Trade:
        """Force a trade at ``price`` (test control). The price is clamped to the daily limits and tick."""
        s = self.symbols[code]
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
        for code, s in self.symbols.items():
            if s.volume:
                self._live_bars.setdefault(code, []).append(
                    DailyBar(self.today, s.open, s.high, s.low, s.price, s.volume, s.value))
            s.prev_volume = s.volume or s.prev_volume
            s.base = s.open = s.high = s.low = s.price
            s.volume = s.value = s.sell_count = s.buy_count = s.sell_volume = s.buy_volume = 0
        self.today = new_day

    # -- history ------------------------------------------------------------------------------
    def _synthetic_history(self, code: str) -> list[DailyBar]:
        """Weekday bars before the first simulated day, oldest first, ending at the first base price."""
        cached = self._history_cache.get(code)
        if cached is not None:
            return cached
        s = self.symbols[code]
        rng = random.Random(f"{self.seed}:{code}:history")
        first_base = self._initial_price(code)
        bars: list[DailyBar] = []
        close = first_base
        day = self.first_day
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
        s = self.symbols[code]
        bars = list(self._synthetic_history(code)) + list(self._live_bars.get(code, ()))
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
        key = (code, self.today, len(self._live_bars.get(code, ())))
        cached = self._range_cache.get(code)
        if cached is None or cached[0] != key:
            past = (self._synthetic_history(code) + self._live_bars.get(code, []))[-249:]
            hi = max(past, key=lambda b: b.high) if past else None
            lo = min(past, key=lambda b: b.low) if past else None
            cached = (key, hi, lo)
            self._range_cache[code] = cached
        _, hi, lo = cached
        s = self.symbols[code]
        high, high_day = (hi.high, hi.date) if hi else (s.price, self.today)
        low, low_day = (lo.low, lo.date) if lo else (s.price, self.today)
        if s.volume and s.high > high:
            high, high_day = s.high, self.today
        if s.volume and s.low < low:
            low, low_day = s.low, self.today
        return high, high_day, low, low_day

    def earliest_date(self) -> dt.date:
        code = next(iter(self.symbols))
        history = self._synthetic_history(code)
        return history[0].date if history else self.first_day

    # -- persistence ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "first_day": self.first_day.isoformat(),
            "today": self.today.isoformat(),
            "symbols": {
                code: {
                    "base": s.base, "price": s.price, "open": s.open, "high": s.high, "low": s.low,
                    "volume": s.volume, "value": s.value, "prev_volume": s.prev_volume, "steps": s.steps,
                    "times": [s.open_time, s.high_time, s.low_time, s.last_time],
                }
                for code, s in self.symbols.items()
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
        for code, d in data["symbols"].items():
            s = self.symbols.get(code)
            if s is None:
                continue
            s.base, s.price, s.open, s.high, s.low = d["base"], d["price"], d["open"], d["high"], d["low"]
            s.volume, s.value, s.prev_volume = d["volume"], d["value"], d["prev_volume"]
            s.steps = d.get("steps", 0)
            s.open_time, s.high_time, s.low_time, s.last_time = d.get("times", ["000000"] * 4)
            # A restored path continues deterministically from (seed, code, steps), not from the
            # generator's internal state (which would be 5 KB a symbol in every snapshot).
            s.rng = random.Random(f"{self.seed}:{code}:{s.steps}")
        self._live_bars = {
            code: [DailyBar(dt.date.fromisoformat(r[0]), *r[1:]) for r in rows]
            for code, rows in data.get("live_bars", {}).items()
        }


def _snap(value: float) -> int:
    return max(1, p.round_down_to_tick(max(1, int(value))))
