"""The broker port: what the service asks of a broker, in the market's money, whoever the broker is.

Two adapters implement :class:`Broker`: KIS's domestic client (``chatbot.kis.domestic_broker``, KRX in
won) and, next, KIS's US-stock client (in dollars). The models here are the domain's:
every amount is a :class:`~chatbot.markets.money.Money` in the market's currency, never a float and
never a bare number; quantities are whole shares.

Why a top-level module and not ``chatbot.kis`` or ``chatbot.markets``: the port is what the service
depends on *instead of* KIS, so it cannot live in the KIS package (the service would import the
adapter's package to name its port, and a second broker would depend on the first); and a market is a
set of rules (ticks, hours, currency, fees), not a counterparty that places orders. The port depends
only on ``chatbot.markets`` (money and profiles); ``chatbot.kis`` and ``chatbot.service`` depend on it.

The KIS domestic wire types (``chatbot.kis.models``: ``Quote``, ``Balance``… in ``int`` won) stay
where they are: they are what KIS's replies parse into, used by the KRX hot paths (the alert book,
the simulator, the order submitter); an adapter converts at the port.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from chatbot.markets import ticks
from chatbot.markets.money import Currency, Money
from chatbot.markets.profile import KRX, US, Market
from chatbot.markets.symbols import Kind

__all__ = [
    "Balance",
    "Bar",
    "Broker",
    "BuyingPower",
    "Execution",
    "Fill",
    "FillListener",
    "Holding",
    "OnSending",
    "OpenOrder",
    "OrderAck",
    "OrderIntent",
    "OrderSide",
    "PlacedOrder",
    "Quote",
]


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Quote:
    """A snapshot of one symbol's price."""

    symbol: str  # KRX short code, or the US ticker
    price: Money
    previous_close: Money  # KRX: the base price (기준가)
    change: Money  # signed
    change_rate: Decimal  # percent, signed
    volume: int
    traded_value: Money
    open: Money
    high: Money
    low: Money
    upper_limit: Money | None  # None: the market has no daily limits
    lower_limit: Money | None
    tick: Money  # the tick at the current price (this instrument's own: ETFs differ on KRX)
    halted: bool = False
    market_name: str = ""  # KOSPI, KOSDAQ, NASDAQ, ...
    sign: str = "3"  # as KIS states it: 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down

    @property
    def currency(self) -> Currency:
        return self.price.currency

    def tick_for(self, price: Money, *, fund: bool = False) -> Money:
        """The tick an order at ``price`` must sit on. ``fund``: the caller knows the instrument is an ETF
        or ETN, which on KRX tick by the fund table at every price. Otherwise it is read from ``tick``, this
        instrument's tick at the current price: when it is the market's table tick there, the table gives
        the tick at any price; on KRX, when it is the fund table's, that table does; otherwise the
        instrument's own tick holds. (Where both tables give the same tick at the current price, an ETF at
        ₩4,990 say, only ``fund`` tells them apart.)"""
        market = KRX if self.currency is KRX.currency else US
        if fund and market is KRX:
            return Money.krw(ticks.fund_tick_size(int(price.amount)))
        if self.tick == market.tick_for(self.price):
            return market.tick_for(price)
        if market is KRX and self.tick.amount == ticks.fund_tick_size(int(self.price.amount)):
            return Money.krw(ticks.fund_tick_size(int(price.amount)))
        return self.tick


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    name: str
    quantity: int
    orderable_quantity: int
    average_price: Money
    cost: Money  # what was paid (purchase amount)
    price: Money  # current
    value: Money  # evaluation at the current price
    profit_loss: Money
    profit_loss_rate: Decimal  # percent


@dataclass(frozen=True, slots=True)
class Balance:
    """One account's holdings and cash in one market's currency."""

    currency: Currency
    holdings: tuple[Holding, ...]
    cash: Money  # deposits (KRX: 예수금)
    cash_settled: Money  # KRX: D+2; US: the cash the broker reports as withdrawable
    holdings_value: Money
    total_value: Money
    cost_total: Money
    profit_loss_total: Money
    net_assets: Money


@dataclass(frozen=True, slots=True)
class BuyingPower:
    orderable_cash: Money
    price: Money  # the price the quantity was computed at
    max_quantity: int


@dataclass(frozen=True, slots=True)
class OrderAck:
    order_no: str  # ODNO
    branch: str  # KRX_FWDG_ORD_ORGNO, needed to revise or cancel
    time: str  # HHMMSS, KST (KIS states every order time in KST, US orders too)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What was (or may have been) sent: a new order, or the cancellation (or, with ``revise``, the
    revision to ``price``) of ``original_order_no``; what :meth:`Broker.find_orders` looks for."""

    side: OrderSide
    symbol: str
    quantity: int
    price: Money | None  # None: a market order
    original_order_no: str | None = None  # set for a cancellation or a revision
    revise: bool = False  # with original_order_no: a revision, listed as a new row pointing back to it


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    ack: OrderAck
    attempts: int
    reconciled: bool  # found in today's orders after an unknown outcome


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_no: str
    branch: str
    original_order_no: str
    symbol: str
    name: str
    side: OrderSide
    quantity: int
    price: Money | None  # None: a market order
    filled_quantity: int
    cancellable_quantity: int
    time: str  # HHMMSS, KST
    exchange: str  # where a revise or cancel must name it: KRX, NXT, SOR; NASD, NYSE, AMEX


@dataclass(frozen=True, slots=True)
class Execution:
    """A row of the day's orders and executions."""

    date: dt.date
    time: str
    order_no: str
    branch: str
    original_order_no: str
    symbol: str
    name: str
    side: OrderSide
    quantity: int
    price: Money | None  # None: a market order
    filled_quantity: int
    average_fill_price: Money
    remaining_quantity: int
    rejected_quantity: int
    cancelled: bool
    exchange: str
    # what the filled shares cost in all (price × quantity summed, the currency's own unit: won; dollars to the
    # sub-cent); None (or 0) where KIS leaves it blank (fill_prices.listed_fill_price then derives from the average)
    filled_amount: Money | None = None


@dataclass(frozen=True, slots=True)
class Bar:
    date: dt.date  # the market's local date
    open: Money
    high: Money
    low: Money
    close: Money
    volume: int
    traded_value: Money


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution notice from the broker's fill feed: one fill (or a refusal) of one order."""

    order_no: str
    original_order_no: str
    symbol: str
    side: OrderSide
    quantity: int  # this fill
    price: Money  # this fill
    order_quantity: int
    time: str  # HHMMSS, KST
    refused: bool = False
    revise_cancel: str = ""  # the notice's RCTF_CLS: 0 an order, 1 a revision, 2 a cancellation ("" unknown)


FillListener = Callable[[Fill], None]
OnSending = Callable[[set[str]], Awaitable[None]]  # gets today's order numbers before the first byte leaves


@runtime_checkable
class Broker(Protocol):
    """One user's account at one broker, in one market.

    Orders are placed once whatever the network does: ``place`` either returns the acknowledged order
    (possibly found by lookup after a lost reply, ``PlacedOrder.reconciled``), raises an error that
    proves it was not placed, or raises one that says the outcome is unknown (nothing is re-sent).
    ``on_sending`` is called before the first byte leaves, with today's order numbers, so the caller
    can journal what it may have sent; if it raises, nothing is sent."""

    @property
    def market(self) -> Market: ...

    async def quote(self, symbol: str, *, kind: Kind | None = None) -> Quote:
        """``kind``: the instrument's, when the caller knows it (KRX quotes an ETN under a code of its own)."""
        ...

    async def buying_power(self, symbol: str, price: Money | None = None) -> BuyingPower: ...

    async def balance(self) -> Balance: ...

    async def holdings(self) -> Sequence[Holding]: ...

    async def open_orders(self) -> Sequence[OpenOrder]: ...

    async def executions(self, day: dt.date) -> Sequence[Execution]: ...

    async def find_orders(self, day: dt.date, intent: OrderIntent, known: Collection[str], *,
                          listed_from: str = "") -> Sequence[Execution]:
        """One look at ``day``'s orders for the intent's symbol and side: the rows that could be what was
        sent (matching it, not among ``known``, the snapshot ``on_sending`` was given), oldest first.
        ``listed_from`` (HHMMSS, KST) drops rows listed earlier. Raises when the broker cannot be asked."""
        ...

    async def place(self, side: OrderSide, symbol: str, quantity: int, price: Money | None, *,
                    on_sending: OnSending | None = None) -> PlacedOrder: ...

    async def revise(self, order: OpenOrder, price: Money, quantity: int | None = None, *,
                     on_sending: OnSending | None = None) -> OrderAck: ...

    async def cancel(self, order: OpenOrder, *, on_sending: OnSending | None = None) -> OrderAck: ...

    async def bars(self, symbol: str, period: str = "D", *, kind: Kind | None = None) -> Sequence[Bar]: ...

    def on_fill(self, listener: FillListener) -> Callable[[], None]:
        """Call ``listener`` for each fill of this account's orders, from the broker's feed (once the
        caller has started it); returns the function that removes the listener."""
        ...
