"""What a fill event records of its fill (``order_events.detail``: ``quantity@price``), written and read here
only, and the price of the shares a cumulative reading of KIS's list of the day's orders adds to the journal.

A detail's price is in its currency's own unit, as :class:`~chatbot.markets.money.Money` counts it: whole won
(``3@70000``), or a ``Decimal`` amount named by its currency (``2@179.5 USD``). Events written before (and
still in the journal) read too: a US price as a bare integer is in 1/10,000 dollar (the fill catch-up's and a
notice's resolved from KIS's list), with a point it is in dollars (reconciliation's), with a sign (``$1,234.50``)
a live notice's ``str(Money)``.

KIS lists an order's cumulative filled quantity, average fill price and filled amount, not its fills: the price
of the shares a reading adds is derived from the amount (or, where KIS leaves it blank, the average) and what the
journal counted before it (:func:`listed_fill_price`): from the amount it is exact, and said to be an average
unless it is provably one price; from the average alone it is bounded, and the shares' own when a tick is that
near."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot.markets.money import Currency, Money, price_units
from chatbot.markets.ticks import fund_tick_size, us_tick_size
from chatbot.service.journal import FILL_STATUSES
from chatbot.storage.tables import OrderEventRow

# Where a push's price of fills KIS's list added comes from (OrderFilled.price_basis): "" the shares' own price
# (one price: from KIS's filled amount, provably; from its average alone, the tick it is near), or an average.
OWN_PRICE: Final = ""
FILLS_AVERAGE: Final = "fills"  # the average of these shares (of several executions, or not provably of one)
ORDER_AVERAGE: Final = "order"  # the order's average fill price so far (these shares' could not be derived)
PRICE_BASES: Final = (OWN_PRICE, FILLS_AVERAGE, ORDER_AVERAGE)
_LEGACY_US_UNITS: Final = 10_000  # a US price written as a bare integer before: 1/10,000 dollar
# How far from KIS's average of an order a derived price (or what the journal counted, on average) can be: one
# order's fills in a day are within KRX's ±30% of the base price of each other (at most 1.86 times apart); a US
# day order's likewise, barring a rare day. Beyond it a figure is wrong (a legacy detail read in another unit).
_PLAUSIBLE_RATIO: Final = Decimal(2)
_SIGNS: Final = {c.symbol: c for c in Currency}

log = logging.getLogger(__name__)


def fill_detail(quantity: int, price: Money) -> str:
    """A fill event's detail: ``quantity`` at ``price`` in its currency's own unit (exact: a price finer than
    the currency's price units is refused)."""
    price_units(price.amount, price.currency)  # (raises on a finer amount)
    if price.currency is Currency.KRW:
        return f"{quantity}@{int(price.amount)}"
    return f"{quantity}@{_plain(price.amount)} {price.currency.value}"


def read_fill_detail(detail: str | None, currency: Currency | str) -> tuple[int, Money | None]:
    """The quantity and price a fill event's detail records (of an order in ``currency``), whichever way it
    was written; the price is None when the detail gives none that can be read."""
    quantity_text, _, price_text = (detail or "").partition("@")
    quantity = int(quantity_text or 0)
    return quantity, _price(price_text.strip(), Currency(currency))


def _price(text: str, currency: Currency) -> Money | None:
    try:
        amount, _, named = text.partition(" ")
        if named:  # "179.5 USD"
            return Money(Decimal(amount), Currency(named))
        if text[:1] in _SIGNS:  # "$1,234.50": a live notice's str(Money), before
            return Money(Decimal(text[1:].replace(",", "")), _SIGNS[text[:1]])
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if currency is not Currency.KRW and "." not in text:  # a bare integer: 1/10,000 dollar, before
        value = value / _LEGACY_US_UNITS
    return Money(value, currency) if value.is_finite() else None


async def counted_fills(session: AsyncSession, journal_id: int, currency: Currency | str) -> tuple[int, Money | None]:
    """The quantity the journal counts as filled for the order and what those shares cost (None when an event's
    price cannot be read)."""
    details = (await session.exec(select(OrderEventRow.detail).where(
        col(OrderEventRow.journal_id) == journal_id, col(OrderEventRow.status).in_(FILL_STATUSES)))).all()
    return _summed(details, Currency(currency))


def _summed(details: Iterable[str | None], currency: Currency) -> tuple[int, Money | None]:
    quantity = 0
    cost: Money | None = Money.zero(currency)
    for detail in details:
        filled, price = read_fill_detail(detail, currency)
        quantity += filled
        cost = None if cost is None or price is None or price.currency is not currency else cost + price * filled
    return quantity, cost


@dataclass(frozen=True, slots=True)
class ListedPrice:
    """The price a push gives of the shares a reading of KIS's list added: ``price`` in the currency's price
    units, ``basis`` one of :data:`PRICE_BASES`."""

    price: Money
    basis: str
    span: tuple[Decimal, Decimal] | None = None  # where the shares' average surely is (None: not derived)

    @property
    def units(self) -> int:
        return price_units(self.price.amount, self.price.currency)

    def may_be(self, price: Money) -> bool:
        """Whether the shares may all have filled at ``price`` (KIS's figures allow it; True when not derived)."""
        return self.span is None or (price.currency is self.price.currency
                                     and self.span[0] <= price.amount <= self.span[1])


def listed_fill_price(average: Money, total: int, counted: int, counted_cost: Money | None, *,
                      amount: Money | None = None, limit: Money | None = None, side: str | None = None) -> ListedPrice:
    """The price of the ``total - counted`` shares KIS's figure (``total`` filled at ``average``, costing
    ``amount`` in all) has beyond the ``counted`` ones the journal holds (costing ``counted_cost``); ``limit`` is
    the order's limit price (None: a market order), ``side`` the order's (buy | sell; None: not known).

    With KIS's filled amount it is exact: ``(amount − cost) / (total − counted)`` (:func:`_from_amount`). Without
    it (a server that leaves it blank, or one that does not mean what :func:`_filled_amount` takes it to), it is
    derived from the average (:func:`_from_average`); without what the counted shares cost, or with a figure that
    gives no price, it is the order's average (:data:`ORDER_AVERAGE`); so too when the price derived (or what the
    counted shares cost, a share) is implausible (:func:`_plausible`): a buy's above its limit, a sell's below, or
    either far from KIS's average. A price whose uncertainty reaches the limit from the wrong side is the limit.
    """
    derived = _derived(average, total, counted, counted_cost, amount, limit)
    if derived.basis == ORDER_AVERAGE or derived.span is None:
        return derived
    checked = _plausible(derived, average, counted, counted_cost, limit, side)
    if checked is None:
        log.warning("a fill price derived from KIS's list is implausible; told as the order's average",
                    extra={"derived": str(derived.price.amount), "average": str(average.amount), "total": total,
                           "counted": counted, "limit": None if limit is None else str(limit.amount), "side": side})
        return ListedPrice(_to_units(average.amount, average.currency), ORDER_AVERAGE)
    return checked


def _derived(average: Money, total: int, counted: int, counted_cost: Money | None, amount: Money | None,
             limit: Money | None) -> ListedPrice:
    currency = average.currency
    new = total - counted
    if new <= 0:
        raise ValueError(f"no shares beyond the {counted} counted in {total}")
    if counted_cost is None or average.amount <= 0 or counted_cost.currency is not currency:
        return ListedPrice(_to_units(average.amount, currency), ORDER_AVERAGE)
    resolution = _resolution(average)
    filled = _filled_amount(amount, average, total)
    exact = ((filled if filled is not None else average.amount * total) - counted_cost.amount) / new
    if exact <= 0:
        return ListedPrice(_to_units(average.amount, currency), ORDER_AVERAGE)
    if filled is not None:
        return _from_amount(exact, total, counted, currency, limit)
    return _from_average(exact, total, counted, currency, resolution)


def _plausible(priced: ListedPrice, average: Money, counted: int, counted_cost: Money | None, limit: Money | None,
               side: str | None) -> ListedPrice | None:
    """``priced`` (derived, with its span) if KIS's figures allow it, the limit if only its uncertainty does; None
    when they rule it out: the span wholly beyond the order's limit on the wrong side (a buy fills at or below its
    limit, a sell at or above), or outside :data:`_PLAUSIBLE_RATIO` of KIS's average, or the counted shares' own
    average so (what the derivation started from is wrong: a legacy detail read in another unit)."""
    assert priced.span is not None
    low, high = priced.span
    band = (average.amount / _PLAUSIBLE_RATIO, average.amount * _PLAUSIBLE_RATIO)
    if high < band[0] or low > band[1]:
        return None
    if counted and counted_cost is not None and not band[0] <= counted_cost.amount / counted <= band[1]:
        return None
    if limit is None or limit.currency is not priced.price.currency or side not in ("buy", "sell"):
        return priced
    if side == "buy" and priced.price.amount > limit.amount:
        return dataclasses.replace(priced, price=limit) if low <= limit.amount else None
    if side == "sell" and priced.price.amount < limit.amount:
        return dataclasses.replace(priced, price=limit) if high >= limit.amount else None
    return priced


def _filled_amount(amount: Money | None, average: Money, total: int) -> Decimal | None:
    """KIS's filled amount of the order (inquire-daily-ccld ``tot_ccld_amt``, inquire-ccnl ``ft_ccld_amt3``), or
    None to derive from the average instead.

    The one reading of the field made here: what the order's fills cost in all, price × quantity summed, in the
    currency's own unit (won; dollars, not rounded to the cent), fees and taxes apart (the domestic output2 sums
    those apart, prsm_tlex_smtl; KIS_API.md §4.6 "filled amount", KIS_OVERSEAS.md §6.2 "체결된 금액"; rows public clients record agree: 1 at
    ₩3,145 listed 3145, 10 at ₩71,500 715000, 10 at $78.45 784.5, 1 at $1,833.9032 1833.9032). A figure KIS
    leaves blank or "0" is none; one that disagrees with KIS's average (``total`` at ``average``, rounded to the
    currency's price unit) beyond that rounding does not mean that (another unit), and is not used."""
    if amount is None or amount.amount <= 0 or amount.currency is not average.currency:
        return None
    if abs(amount.amount - average.amount * total) > total * Decimal(1) / average.currency.price_units:
        log.warning("KIS's filled amount disagrees with its average fill price; derived from the average",
                    extra={"amount": str(amount.amount), "average": str(average.amount), "total": total})
        return None
    return amount.amount


def _from_amount(exact: Decimal, total: int, counted: int, currency: Currency, limit: Money | None) -> ListedPrice:
    """The ``total − counted`` new shares' exact average ``exact`` (from KIS's filled amount), told as their own
    price only when they provably all filled at it: on the instrument's tick grid and either one share, or the
    order's limit (a buy fills at or below its limit, a sell at or above: an average at the limit is every share
    at the limit). Else it is said to be their average (:data:`FILLS_AVERAGE`) though it may be one execution's:
    several executions at different prices can average onto a tick, and one reading may hold several fills.

    ``exact`` is as exact as what the journal counted: a counted average recorded in the price unit (fill_detail)
    may be half a unit a share off, so whether the shares may have filled at a notice's price (``span``)
    allows that much."""
    new = total - counted
    grid = _grid(exact, currency)
    slack = counted * Decimal(1) / currency.price_units / 2 / new
    span = (exact - slack, exact + slack)
    provably_one = new == 1 or (limit is not None and limit.currency is currency and exact == limit.amount)
    if provably_one and exact % grid == 0:
        return ListedPrice(Money(exact, currency), OWN_PRICE, span)
    return ListedPrice(_to_units(exact, currency), FILLS_AVERAGE, span)


def _from_average(exact: Decimal, total: int, counted: int, currency: Currency, resolution: Decimal) -> ListedPrice:
    """The ``total − counted`` shares' price derived from KIS's average (``exact`` as if the average were).

    KIS's average is rounded (won, or 1/10,000 dollar, or the places it was given with), which the division
    magnifies: the derived price is within ``resolution·(total + counted)/(total − counted)`` of the truth. A
    price grid point (any instrument's tick: 5 won from 2,000 won, 1 below; a cent from a dollar) that near it is
    the shares' own price; a derived price off the grid, or one coarser than the grid, is the
    average of several executions (:data:`FILLS_AVERAGE`)."""
    new = total - counted
    bound = resolution * (total + counted) / new
    grid = _grid(exact, currency)
    nearest = (exact / grid).to_integral_value(ROUND_HALF_UP) * grid
    span = (exact - bound, exact + bound)
    if bound <= grid and abs(exact - nearest) <= bound and nearest > 0:
        return ListedPrice(Money(nearest, currency), OWN_PRICE, span)
    return ListedPrice(_to_units(exact, currency), FILLS_AVERAGE, span)


def _resolution(average: Money) -> Decimal:
    """How finely KIS's average is given: the places it was written with, at most the currency's price unit."""
    unit = Decimal(1) / average.currency.price_units
    exponent = average.amount.as_tuple().exponent
    return min(Decimal(1).scaleb(exponent), unit) if isinstance(exponent, int) else unit


def _grid(price: Decimal, currency: Currency) -> Decimal:
    """The finest tick of any instrument at ``price``."""
    return Decimal(fund_tick_size(int(price))) if currency is Currency.KRW else us_tick_size(price)


def _to_units(amount: Decimal, currency: Currency) -> Money:
    unit = Decimal(1) / currency.price_units
    return Money(amount.quantize(unit, rounding=ROUND_HALF_UP), currency)


def _plain(amount: Decimal) -> str:
    """``amount`` without a needless exponent or trailing zeros (``179.5``, ``180``)."""
    return format(amount.normalize(), "f")
