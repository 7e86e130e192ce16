"""The simulator's US market: the directory's NASDAQ, NYSE and AMEX rows, priced in dollars.

As for KRX (:mod:`chatbot.sim.market`), a symbol's state is made on first use and only symbols in
play are stepped; each draws from its own ``random.Random`` seeded by ``(seed, ticker)``. Prices are
whole ten-thousandths of a dollar (``units``): the US tick is 100 units ($0.01) at or above $1 and one
unit ($0.0001) below, so every price the simulator makes is on the grid and exact. There are no daily
price limits. A symbol's first previous close is drawn from the seed in a range typical of its kind;
its history before that is synthesised backwards over NYSE trading days. The trading day is New
York's: the base price becomes the last price when the New York date changes.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chatbot.kis import overseas_protocol as o
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.symbols import Kind, Symbol
from chatbot.markets.us_hours import NEW_YORK, UsPhase, is_trading_day

UNITS = 10_000  # price units per dollar
HISTORY_DAYS = 3 * 365
STEP_VOLATILITY = 0.0012
# First previous closes drawn from the seed (dollars, log-uniform) by kind.
PRICE_RANGES: dict[Kind, tuple[float, float]] = {
    Kind.STOCK: (3.0, 600.0), Kind.ETF: (12.0, 550.0), Kind.ETN: (6.0, 120.0), Kind.OTHER: (5.0, 60.0),
    Kind.PREFERRED: (12.0, 30.0)}
PENNY_SHARE = 0.06  # the part of common shares that trade below a dollar
PENNY_RANGE = (0.12, 0.98)


def tick_units(price: int) -> int:
    return 100 if price >= UNITS else 1


def snap(price: float) -> int:
    """A price in units, on the tick grid (down), never below one unit."""
    value = max(1, int(price))
    return max(1, value - value % tick_units(value))


def session_code(phase: UsPhase) -> str:
    """HDFSCNT0's MTYP for a US phase: 2 pre-market, 3 after-market, 1 otherwise."""
    return {UsPhase.PRE_MARKET: o.MTYP_PRE, UsPhase.AFTER_MARKET: o.MTYP_AFTER}.get(phase, o.MTYP_REGULAR)


def dollars(units: int) -> Decimal:
    return Decimal(units).scaleb(-4)


def units_of(price: Decimal) -> int:
    return int(price * UNITS)


@dataclass(frozen=True, slots=True)
class UsTrade:
    symbol: str
    exchange: UsExchange
    price: int  # units
    volume: int
    at: dt.datetime  # aware
    buyer_initiated: bool
    session: str  # MTYP: 1 regular, 2 pre-market, 3 after-market


@dataclass(slots=True)
class UsBar:
    date: dt.date  # New York date
    open: int
    high: int
    low: int
    close: int
    volume: int
    value: int  # dollars (whole)


@dataclass(slots=True)
class UsSymbolState:
    listing: Symbol
    exchange: UsExchange
    base: int  # previous close, units
    price: int
    open: int
    high: int
    low: int
    volume: int = 0
    value: int = 0  # traded value in units × shares
    sell_volume: int = 0
    buy_volume: int = 0
    prev_volume: int = 0
    prev_value: int = 0
    shares: int = 0  # shares outstanding
    last_at: dt.datetime | None = None
    steps: int = 0
    since: dt.date = dt.date.min
    initial: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def symbol(self) -> str:
        return self.listing.code

    @property
    def realtime_key(self) -> str:
        return o.realtime_key(self.exchange, self.symbol)

    @property
    def traded_dollars(self) -> int:
        return self.value // UNITS


class UsMarket:
    """Price process, New York day rollover and bar history of every US listing in the directory."""

    def __init__(self, seed: int, directory: SymbolDirectory, today: dt.date) -> None:
        self.seed = seed
        self.directory = directory
        self.first_day = today
        self.today = today  # the New York date of the current trading day
        self._states: dict[str, UsSymbolState] = {}
        self._active: dict[str, UsSymbolState] = {}
        self._live_bars: dict[str, list[UsBar]] = {}
        self._history: dict[str, list[UsBar]] = {}
        self._listeners: list[Callable[[UsTrade], None]] = []

    # -- universe ---------------------------------------------------------------------------------------
    def listing(self, symbol: str) -> Symbol | None:
        return self.directory.by_code(symbol, "US")

    def get(self, symbol: str) -> UsSymbolState | None:
        """The state of a listed ticker (made on first use), in play from now on."""
        listing = self.listing(symbol)
        if listing is None:
            return None
        state = self._states.get(listing.code)
        if state is None:
            state = self._states[listing.code] = self._new_symbol(listing)
        if listing.code not in self._active:
            self._active[listing.code] = state
        return state

    def quoted(self, symbol: str, exchange: UsExchange) -> UsSymbolState | None:
        """The state behind a quote request: only on the exchange that lists the symbol."""
        listing = self.listing(symbol)
        if listing is None or UsExchange.of_market(listing.market) is not exchange:
            return None
        return self.get(listing.code)

    def by_realtime_key(self, key: str) -> UsSymbolState | None:
        parsed = o.parse_realtime_key(key)
        return self.quoted(parsed[1], parsed[0]) if parsed is not None else None

    def in_play(self) -> Iterator[UsSymbolState]:
        return iter(list(self._active.values()))

    @property
    def in_play_count(self) -> int:
        return len(self._active)

    def _new_symbol(self, listing: Symbol) -> UsSymbolState:
        price = self._initial_price(listing)
        rng = random.Random(f"{self.seed}:US:{listing.code}")
        state = UsSymbolState(listing=listing, exchange=UsExchange.of_market(listing.market), base=price,
                              price=price, open=price, high=price, low=price, rng=rng, since=self.today,
                              initial=price)
        state.shares = rng.randint(30, 9_000) * 1_000_000 // max(1, price // (50 * UNITS))
        state.prev_volume = rng.randint(20_000, 40_000_000) // max(1, price // (100 * UNITS))
        state.prev_value = state.prev_volume * price // UNITS
        return state

    def _initial_price(self, listing: Symbol) -> int:
        rng = random.Random(f"{self.seed}:US:{listing.code}:init")
        if listing.kind is Kind.STOCK and rng.random() < PENNY_SHARE:
            low, high = PENNY_RANGE
        else:
            low, high = PRICE_RANGES.get(listing.kind, PRICE_RANGES[Kind.STOCK])
        return snap(math.exp(rng.uniform(math.log(low), math.log(high))) * UNITS)

    def add_listener(self, callback: Callable[[UsTrade], None]) -> None:
        self._listeners.append(callback)

    # -- price process -------------------------------------------------------------------------------------
    def step(self, symbol: str, at: dt.datetime, session: str) -> UsTrade:
        s = self.get(symbol)
        if s is None:
            raise KeyError(symbol)
        rng = s.rng
        s.steps += 1
        target = s.price * math.exp(rng.gauss(0.0, STEP_VOLATILITY))
        tick = tick_units(int(target))
        low = math.floor(target / tick) * tick
        price = snap(low + (tick if rng.random() < (target - low) / tick else 0))
        volume = max(1, int(rng.expovariate(1 / 120)) * (10 if s.price < 20 * UNITS else 1))
        return self._record(s, price, volume, at, rng.random() < 0.5, session)

    def step_all(self, at: dt.datetime, session: str) -> list[UsTrade]:
        return [self.step(s.symbol, at, session) for s in self.in_play()]

    def set_price(self, symbol: str, price: int, at: dt.datetime, session: str, volume: int = 1) -> UsTrade:
        """Force a trade at ``price`` units (snapped to the tick): a test control."""
        s = self.get(symbol)
        if s is None:
            raise KeyError(symbol)
        price = snap(price)
        return self._record(s, price, volume, at, price >= s.price, session)

    def _record(self, s: UsSymbolState, price: int, volume: int, at: dt.datetime, buyer: bool,
                session: str) -> UsTrade:
        if s.volume == 0:
            s.open = s.high = s.low = price
        s.high = max(s.high, price)
        s.low = min(s.low, price)
        s.price = price
        s.volume += volume
        s.value += volume * price
        s.last_at = at
        if buyer:
            s.buy_volume += volume
        else:
            s.sell_volume += volume
        trade = UsTrade(s.symbol, s.exchange, price, volume, at, buyer, session)
        for listener in self._listeners:
            listener(trade)
        return trade

    def roll_day(self, new_day: dt.date) -> None:
        """Close the New York day: record its bar; the last price becomes the base."""
        if new_day <= self.today:
            return
        for symbol, s in self._states.items():
            if s.volume:
                self._live_bars.setdefault(symbol, []).append(
                    UsBar(self.today, s.open, s.high, s.low, s.price, s.volume, s.value // UNITS))
                s.prev_volume, s.prev_value = s.volume, s.value // UNITS
            s.base = s.open = s.high = s.low = s.price
            s.volume = s.value = s.sell_volume = s.buy_volume = 0
        self.today = new_day

    # -- history -------------------------------------------------------------------------------------------
    def _synthetic(self, s: UsSymbolState) -> list[UsBar]:
        cached = self._history.get(s.symbol)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:US:{s.symbol}:history")
        bars: list[UsBar] = []
        close = s.initial or s.base
        day = s.since
        for _ in range(HISTORY_DAYS):
            day -= dt.timedelta(days=1)
            if not is_trading_day(day):
                continue
            open_ = snap(close * math.exp(rng.gauss(0.0, 0.005)))
            spread = max(tick_units(close), int(close * abs(rng.gauss(0.0, 0.008))))
            high = max(snap(max(open_, close) + spread * rng.random()), open_, close)
            low = snap(min(open_, close) - spread * rng.random())
            volume = max(100, int(s.prev_volume * rng.uniform(0.5, 1.7)))
            bars.append(UsBar(day, open_, high, low, close, volume, volume * close // UNITS))
            close = snap(close / math.exp(rng.gauss(0.0, 0.017)))
        bars.reverse()
        self._history[s.symbol] = bars
        return bars

    def daily_bars(self, s: UsSymbolState) -> list[UsBar]:
        """Every daily bar, oldest first; today's (partial) bar last when anything traded."""
        bars = self._synthetic(s) + self._live_bars.get(s.symbol, [])
        if s.volume:
            bars = [*bars, UsBar(self.today, s.open, s.high, s.low, s.price, s.volume, s.value // UNITS)]
        return bars

    def bars(self, s: UsSymbolState, period: str, end: dt.date, limit: int = o.BARS_PER_CALL) -> list[UsBar]:
        """Bars of ``period`` (``0`` day, ``1`` week, ``2`` month) ending at or before ``end``,
        newest first, at most ``limit`` (a week or month is labelled with its last trading day)."""
        daily = [b for b in self.daily_bars(s) if b.date <= end]
        if period == "0":
            return daily[::-1][:limit]
        key: Callable[[dt.date], Any] = (lambda d: d.isocalendar()[:2]) if period == "1" else (
            lambda d: (d.year, d.month))
        grouped: list[UsBar] = []
        for bar in daily:
            if grouped and key(grouped[-1].date) == key(bar.date):
                g = grouped[-1]
                grouped[-1] = UsBar(bar.date, g.open, max(g.high, bar.high), min(g.low, bar.low), bar.close,
                                    g.volume + bar.volume, g.value + bar.value)
            else:
                grouped.append(UsBar(bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.value))
        return grouped[::-1][:limit]

    def fifty_two_week(self, s: UsSymbolState) -> tuple[UsBar | None, UsBar | None]:
        """The bars of the 52-week high and low (today's included)."""
        since = self.today - dt.timedelta(days=364)
        window = [b for b in self.daily_bars(s) if b.date >= since]
        if not window:
            return None, None
        return max(window, key=lambda b: b.high), min(window, key=lambda b: b.low)

    # -- persistence ---------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day.isoformat(), "today": self.today.isoformat(),
            "symbols": {sym: {"base": s.base, "price": s.price, "open": s.open, "high": s.high, "low": s.low,
                              "volume": s.volume, "value": s.value, "prev_volume": s.prev_volume,
                              "steps": s.steps, "since": s.since.isoformat(), "initial": s.initial}
                        for sym, s in self._active.items()},
            "live_bars": {sym: [[b.date.isoformat(), b.open, b.high, b.low, b.close, b.volume, b.value]
                                for b in bars] for sym, bars in self._live_bars.items()},
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.first_day = dt.date.fromisoformat(data["first_day"])
        self.today = dt.date.fromisoformat(data["today"])
        self._history.clear()
        for symbol, d in data.get("symbols", {}).items():
            s = self.get(symbol)
            if s is None:
                continue
            s.base, s.price, s.open, s.high, s.low = d["base"], d["price"], d["open"], d["high"], d["low"]
            s.volume, s.value, s.prev_volume, s.steps = d["volume"], d["value"], d["prev_volume"], d["steps"]
            s.since, s.initial = dt.date.fromisoformat(d["since"]), d["initial"]
            s.rng = random.Random(f"{self.seed}:US:{symbol}:{s.steps}")
        self._live_bars = {sym: [UsBar(dt.date.fromisoformat(r[0]), *r[1:]) for r in rows]
                           for sym, rows in data.get("live_bars", {}).items()}


def new_york_date(at: dt.datetime) -> dt.date:
    return at.astimezone(NEW_YORK).date()
