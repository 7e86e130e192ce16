"""Conditional orders on US stocks: ``/stop AAPL 3 180``, ``/stop 애플 3 180 179.5``, ``/trail TSLA 1 5%``,
``/bracket NVDA 2 120 150`` — the same conditional orders as domestic ones (:mod:`.conditional`: the
same card, the same armed → firing → placed transition, the same once-only journal and reconciliation),
with what differs for the US said here.

* The order's ``code`` is the realtime key its trades ride on (``DNASAAPL`` on HDFSCNT0), its prices
  integers in :attr:`Currency.USD.price_units <chatbot.markets.money.Currency.price_units>`
  (ten-thousandths of a dollar, the sub-dollar tick), ``market`` US, ``currency`` USD.
* KIS has no plain market order for US stocks: a sell goes at the typed limit, or at a marketable limit
  — the lower of the trigger and the crossing trade, less ``kis.us_stop_slippage_percent``, down to the
  US tick. With the slippage set to 0 a limit must be typed.
* Held: the US balance's orderable quantity. Fires only in the US regular session (the US calendar).
* The sell is sent by the US broker's once-only submitter (:meth:`UsBroker.place
  <chatbot.kis.us_broker.UsBroker.place>`, as US order cards are), journalled as a US order (market,
  exchange, order type LIMIT, price in dollars), so reconciliation settles it like any US order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from chatbot import broker as b
from chatbot.kis import overseas_protocol as o
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision
from chatbot.markets.money import Currency, Money
from chatbot.markets.symbols import Symbol
from chatbot.markets.us_hours import UsPhase
from chatbot.service.accounts import UserAccount
from chatbot.service.errors import UserError
from chatbot.service.inputs import MAX_ARG_LENGTH, MAX_SYMBOL_WORDS, parse_quantity
from chatbot.service.us_market import UsMarketData
from chatbot.service.us_orders import parse_us_price

SCALE = Currency.USD.price_units  # price units per dollar
_PERCENT = re.compile(r"^([0-9]{1,2}(?:\.[0-9]{1,2})?)%$")
# A number as typed at the end of the words (parse_us_price reads it): "180", "$179.50", "180달러", "１８０".
_NUMBER = re.compile(r"^[$＄]?\d[\d,.]*(?:[$＄]|달러|불|usd)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UsRequest:
    symbol: Symbol
    quantity: int
    stop: int | None = None  # price units
    take: int | None = None
    limit: int | None = None
    trail: Decimal | None = None


def units(dollars: Decimal) -> int:
    return int((dollars * SCALE).to_integral_value())


def dollars(value: int | None) -> Decimal | None:
    """Price units as dollars: cents at or above the cent, else the sub-cent tick's four places."""
    if value is None:
        return None
    amount = Decimal(value) / SCALE
    return amount.quantize(Decimal("0.01")) if value % 100 == 0 else amount.quantize(Decimal("0.0001"))


def ticker_of(code: str) -> str:
    parsed = o.parse_realtime_key(code)
    return parsed[1] if parsed is not None else code


def exchange_of_key(code: str) -> UsExchange | None:
    parsed = o.parse_realtime_key(code)
    return parsed[0] if parsed is not None else None


def down_to_tick(value: int) -> int:
    """Price units down to the US tick at that price ($0.01 at or above $1, $0.0001 below)."""
    tick = SCALE // 100 if value >= SCALE else 1
    return value - value % tick


class UsConditional:
    def __init__(self, market: UsMarketData, slippage_percent: Decimal = Decimal(1)) -> None:
        self.market = market
        self.slippage_percent = slippage_percent

    # -- what a person types ----------------------------------------------------------------------------
    def request(self, kind: str, args: Sequence[str]) -> UsRequest | None:
        """The US request ``args`` make, or None when they name no US stock (a domestic order)."""
        words = [w for w in args if w]
        if any(len(w) > MAX_ARG_LENGTH for w in words):
            return None
        tail = 0
        while tail < len(words) - 1 and (_NUMBER.match(words[-1 - tail]) or _PERCENT.match(words[-1 - tail])):
            tail += 1
        if tail < 2 or len(words) - tail > MAX_SYMBOL_WORDS:
            return None
        symbol = self.market.lookup(" ".join(words[:-tail]))
        if symbol is None:
            return None
        values = words[-tail:]
        usage = f"usage_{kind}"
        if kind == "trail":
            match = _PERCENT.match(values[-1])
            if len(values) != 2 or match is None:
                raise UserError(usage)
            percent = Decimal(match.group(1))
            if not 0 < percent <= 30:
                raise UserError("bad_percent", maximum=30)
            return UsRequest(symbol, parse_quantity(values[0]), trail=percent)
        counts = (3,) if kind == "bracket" else (2, 3)
        if len(values) not in counts or any(_PERCENT.match(v) for v in values):
            raise UserError(usage)
        quantity = parse_quantity(values[0])
        prices = [units(parse_us_price(v)) for v in values[1:]]
        if kind == "bracket":
            if prices[0] >= prices[1]:
                raise UserError("us_cond_bracket_order", stop=f"${dollars(prices[0])}", take=f"${dollars(prices[1])}")
            return UsRequest(symbol, quantity, stop=prices[0], take=prices[1])
        limit = prices[1] if len(prices) == 2 else None
        if kind == "stop":
            return UsRequest(symbol, quantity, stop=prices[0], limit=limit)
        return UsRequest(symbol, quantity, take=prices[0], limit=limit)

    # -- the market ---------------------------------------------------------------------------------------
    def in_session(self) -> bool:
        """US trades fire only in the US regular session (the US calendar, America/New_York)."""
        return self.market.state().phase is UsPhase.REGULAR

    def marketable(self, trigger: int, trade: int | None = None) -> int | None:
        """The sell's limit when none was typed: the lower of the trigger and the crossing trade, less the
        slippage, down to the tick (None: the slippage is off, a limit must be typed)."""
        if self.slippage_percent <= 0:
            return None
        base = min(trigger, trade) if trade else trigger
        raw = int((Decimal(base) * (100 - self.slippage_percent) / 100).to_integral_value(ROUND_DOWN))
        return max(down_to_tick(raw), 100)  # at least $0.01, KIS's smallest US order price

    async def key(self, account: UserAccount, symbol: Symbol) -> str:
        """The realtime key the stock's trades ride on (``DNASAAPL``)."""
        broker = self.market.broker(account.client)
        return o.realtime_key(await broker.exchange(symbol.code), symbol.code)

    async def price(self, account: UserAccount, code: str) -> int:
        quote = await self.market.broker(account.client).quote(ticker_of(code))
        return units(quote.price.amount)

    async def held(self, account: UserAccount, code: str) -> int:
        ticker = ticker_of(code)
        found = next((h for h in await self.market.broker(account.client).holdings() if h.symbol == ticker), None)
        return found.orderable_quantity if found else 0

    async def sell(self, account: UserAccount, code: str, quantity: int, limit: int,
                   on_sending: b.OnSending) -> b.PlacedOrder:
        """The sell through the US broker's once-only submitter, at a limit (price units)."""
        broker = self.market.broker(account.client)
        exchange = exchange_of_key(code)
        ticker = ticker_of(code)
        if exchange is not None:
            broker.remember(ticker, exchange)
        return await broker.place(OrderSide.SELL, ticker, quantity, Money.usd(Decimal(limit) / SCALE),
                                  on_sending=on_sending, division=UsOrderDivision.LIMIT)
