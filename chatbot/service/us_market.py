"""US stocks a user asks about: which ticker a text names, its quote in dollars with the session it
trades in, and a KRW estimate at the rate KIS reports. KIS is reached through the broker port
(:class:`chatbot.kis.us_broker.UsBroker`, one per account).

A text names a US stock when the KRX directory does not name one exactly and the US directory does
(``AAPL``, ``애플``, ``QQQ``); ``삼성`` stays a KRX question (candidates there), so domestic behaviour
is unchanged."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal

from chatbot.charts import plot_bars, render_candles
from chatbot.kis.overseas import KisOverseasClient
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.kis.rest import KisRestClient
from chatbot.kis.us_broker import UsBroker
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.money import Money
from chatbot.markets.symbols import Symbol
from chatbot.markets.us_hours import SEOUL, UsCalendar, UsMarketState
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import UserError, kis_errors
from chatbot.service.inputs import MAX_ARG_LENGTH, is_chart_period, parse_chart_period
from chatbot.service.us_views import UsQuoteView, UsStatusView
from chatbot.service.views import ChartView

PERIOD_TITLES = {"D": "daily", "W": "weekly", "M": "monthly"}


class UsMarketData:
    def __init__(self, accounts: AccountProvider, symbols: SymbolDirectory, calendar: UsCalendar) -> None:
        self.accounts = accounts
        self.symbols = symbols
        self.calendar = calendar
        # one US broker (its submitter's lock: one order at a time) per account's REST client
        self._brokers: weakref.WeakKeyDictionary[KisRestClient, UsBroker] = weakref.WeakKeyDictionary()
        self.last_rate = Decimal(0)  # KRW per USD as KIS last reported it (cards' KRW estimate)
        self.check_maintenance: Callable[[], None] = lambda: None  # KIS's maintenance windows (MarketData's)

    # -- which market ------------------------------------------------------------------------------------
    def lookup(self, text: str) -> Symbol | None:
        """The US stock ``text`` names, or None when it is a KRX question (or names nothing)."""
        text = text.strip()
        if not text or len(text) > MAX_ARG_LENGTH:
            return None
        krx = self.symbols.lookup(text)
        if krx.symbol is not None:  # an exact KRX match stays domestic
            return None
        us = self.symbols.lookup(text, "US").symbol
        if us is not None and krx.candidates and _is_ticker_of(text, us):
            return None  # "KB", "HD": a bare ticker that also starts KRX names keeps the KRX candidates
        return us

    def by_code(self, code: str) -> Symbol | None:
        return self.symbols.by_code(code, "US")

    def name_of(self, code: str) -> str | None:
        found = self.by_code(code)
        return (found.name_ko or found.name_en) if found is not None else None

    def exchange_of(self, code: str) -> UsExchange | None:
        found = self.by_code(code)
        return UsExchange.of_market(found.market) if found is not None else None

    def state(self) -> UsMarketState:
        return self.calendar.state()

    def status(self) -> UsStatusView:
        """The US session now (KST times), for /status."""
        state = self.calendar.state()
        return UsStatusView(session=state.phase.value, next_open=state.next_open.astimezone(SEOUL),
                            holiday=state.holiday_name, early_close=state.session.early_close)

    # -- brokers -------------------------------------------------------------------------------------------
    def broker(self, rest: KisRestClient) -> UsBroker:
        found = self._brokers.get(rest)
        if found is None:
            found = UsBroker(KisOverseasClient(rest), exchange_of=self.exchange_of)
            self._brokers[rest] = found
        return found

    async def broker_for(self, user_id: int) -> UsBroker:
        account = await self.accounts.for_user(user_id)
        return self.broker(account.client)

    def rate(self, broker: UsBroker) -> Decimal:
        """The KRW rate for estimates: the broker's latest, else the last any broker saw."""
        if broker.krw_per_usd > 0:
            self.last_rate = broker.krw_per_usd
        return self.last_rate

    # -- quotes --------------------------------------------------------------------------------------------
    async def quote(self, user_id: int, symbol: Symbol) -> UsQuoteView:
        self.check_maintenance()
        broker = await self.broker_for(user_id)
        with kis_errors():
            q = await broker.quote(symbol.code)
        state = self.calendar.state()
        rate = self.rate(broker)
        return UsQuoteView(
            symbol=symbol, exchange=q.market_name or symbol.market, price=q.price, change=q.change,
            change_rate=q.change_rate, sign=q.sign, previous_close=q.previous_close, open=q.open, high=q.high,
            low=q.low, volume=q.volume, session=state.phase.value, next_open=state.next_open.astimezone(SEOUL),
            krw_per_usd=rate, price_krw=Money.krw((q.price.amount * rate).quantize(Decimal(1))) if rate > 0 else None,
            tradable=not q.halted)

    async def chart(self, user_id: int, args: Sequence[str]) -> ChartView | None:
        """``/chart AAPL [d|w|m]`` from KIS's overseas period bars (in dollars); None when the words
        name no US stock (the domestic chart answers)."""
        if not args:
            return None
        period_word = args[-1] if len(args) > 1 and is_chart_period(args[-1]) else None
        symbol = self.lookup(" ".join(args[:-1] if period_word else args))
        if symbol is None:
            return None
        period = parse_chart_period(period_word)
        self.check_maintenance()
        broker = await self.broker_for(user_id)
        with kis_errors():
            bars = await broker.bars(symbol.code, period)
        if not bars:
            raise UserError("unknown_symbol", query=symbol.code)
        title = f"{symbol.code} {symbol.name_en} · {PERIOD_TITLES[period]} · USD"  # the font has no Hangul
        # the US tick: cents, or four places where the chart goes under a dollar ($0.51 hides $0.5123)
        decimals = 4 if min(b.low.amount for b in bars) < 1 else 2
        png = await asyncio.to_thread(render_candles, plot_bars(bars), title, price_decimals=decimals)
        return ChartView(symbol, period, png, len(bars), bars[0].close)


def _is_ticker_of(text: str, symbol: Symbol) -> bool:
    return text.strip().upper().replace(".", "/") == symbol.code.upper()
