"""Tick rules (호가가격단위): the price grid each market's orders must sit on.

KRX prices are whole won and its functions take and give ``int`` (the alert book, the simulator and the
KIS domestic protocol all count in won); US prices are ``Decimal`` dollars. :class:`chatbot.markets.
profile.Market` puts either behind one ``Decimal`` interface. The KIS protocol modules re-export these
names (``chatbot.kis.protocol.tick_size`` …), which the simulator uses.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Final

# --- KRX (KIS_API.md §6.5) ----------------------------------------------------------------------------
# (upper bound exclusive, tick) — the table in force since 2023-01-25, same for KOSPI and KOSDAQ.
TICK_TABLE: Final[tuple[tuple[int, int], ...]] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)
TOP_TICK: Final = 1_000


def tick_size(price: int) -> int:
    """KRX tick (호가가격단위) of a share for a price in won (the fallback when a quote gives no ``aspr_unit``)."""
    for bound, tick in TICK_TABLE:
        if price < bound:
            return tick
    return TOP_TICK


# ETFs and ETNs tick differently from shares (§6.5 (c), unverified here): 1 won below 2,000 won, 5 won
# from 2,000. KIS gives the stock's own tick as ``aspr_unit`` in inquire-price; a client uses that.
FUND_TICK_BOUND: Final = 2_000


def fund_tick_size(price: int) -> int:
    """Tick of an ETF or ETN (our choice, unverified: see :data:`UNVERIFIED_CHOICES`)."""
    return 1 if price < FUND_TICK_BOUND else 5


def is_on_tick(price: int) -> bool:
    return price > 0 and price % tick_size(price) == 0


def round_down_to_tick(price: int) -> int:
    return price - price % tick_size(price)


def round_up_to_tick(price: int) -> int:
    rem = price % tick_size(price)
    up = price if rem == 0 else price + tick_size(price) - rem
    # Crossing a band boundary can change the tick of the result; the bands' bounds are on every tick.
    return up


# --- US (KIS_OVERSEAS.md §10, SEC Rule 612) -----------------------------------------------------------
ONE_CENT: Final = Decimal("0.01")
SUB_DOLLAR_TICK: Final = Decimal("0.0001")


def us_tick_size(price: Decimal) -> Decimal:
    """The US minimum price increment (SEC Rule 612): $0.01 at or above $1, $0.0001 below."""
    return ONE_CENT if price >= 1 else SUB_DOLLAR_TICK


def us_is_on_tick(price: Decimal) -> bool:
    return price > 0 and price % us_tick_size(price) == 0


def us_round_to_tick(price: Decimal, up: bool = False) -> Decimal:
    """``price`` on the tick grid, down (or up), never below the smallest tick."""
    tick = us_tick_size(price)
    return max(price.quantize(tick, rounding=ROUND_UP if up else ROUND_DOWN), SUB_DOLLAR_TICK)
