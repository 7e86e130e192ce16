"""Market data a user asks for: which stock a text names, its quote, its chart, and the state of
the market and of the bot (/status)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from chatbot import __version__
from chatbot.charts import plot_bars, render_candles
from chatbot.market_hours import MarketCalendar
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import UserError, kis_errors
from chatbot.service.inputs import (
    MAX_ARG_LENGTH,
    is_chart_period,
    parse_chart_period,
    resolve_symbol,
)
from chatbot.service.views import ChartView, CommandDraft, Mode, QuoteView, StatusView
from chatbot.symbols import Symbol, SymbolDirectory

PERIOD_TITLES = {"D": "daily", "W": "weekly", "M": "monthly"}


class MarketData:
    def __init__(self, accounts: AccountProvider, symbols: SymbolDirectory, mode: Mode, calendar: MarketCalendar,
                 *, feed_connected: Callable[[], bool] | None = None) -> None:
        self.accounts = accounts
        self.symbols = symbols
        self.mode = mode
        self.calendar = calendar
        self.feed_connected = feed_connected  # None: no market-data feed configured

    def resolve(self, text: str) -> Symbol:
        return resolve_symbol(self.symbols, text)

    def check_maintenance(self) -> None:
        """KIS is in a maintenance window the operator configured: say until when, ask KIS nothing."""
        until = self.calendar.maintenance_until()
        if until is not None:
            raise UserError("kis_maintenance", until=until)

    async def quote(self, user_id: int, symbol_text: str) -> QuoteView:
        self.check_maintenance()
        symbol = self.resolve(symbol_text)
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            quote = await account.broker.quote(symbol.code, kind=symbol.kind)
        return QuoteView(symbol, quote)

    async def chart(self, user_id: int, args: Sequence[str]) -> ChartView:
        """``<symbol words…> [d|w|m]``: recent daily/weekly/monthly candles as a PNG (rendered off the
        event loop)."""
        if not args:
            raise UserError("usage_chart")
        period_word = args[-1] if len(args) > 1 and is_chart_period(args[-1]) else None
        if period_word is None and len(args) > 1:
            self._check_period_word(args)
        symbol_text = " ".join(args[:-1] if period_word else args)
        self.check_maintenance()
        period = parse_chart_period(period_word)
        try:
            symbol = self.resolve(symbol_text)
        except UserError as err:
            if err.key == "ambiguous_symbol":  # each candidate may bring this chart (not a quote)
                err.params["order"] = CommandDraft("chart", (period,) if period_word else ())
            raise
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            bars = await account.broker.bars(symbol.code, period, kind=symbol.kind)
        if not bars:
            raise UserError("unknown_symbol", query=symbol_text)
        title = f"{symbol.code} {symbol.name_en} · {PERIOD_TITLES[period]}"
        png = await asyncio.to_thread(render_candles, plot_bars(bars), title)
        return ChartView(symbol, period, png, len(bars), bars[0].close)

    def _check_period_word(self, args: Sequence[str]) -> None:
        """``/chart 005930 x``: when the words name no stock but all but the last do, the last word was
        meant as the period — say that, not "no such stock"."""
        try:
            self.resolve(" ".join(args))
            return
        except UserError as err:
            if err.key != "unknown_symbol":
                return
        try:
            self.resolve(" ".join(args[:-1]))
        except UserError:
            return
        raise UserError("bad_chart_period", period=args[-1][:MAX_ARG_LENGTH])

    def status(self) -> StatusView:
        state = self.calendar.state()
        connected = self.feed_connected() if self.feed_connected is not None else None
        return StatusView(self.mode, state.phase.value, state.next_open, state.holiday_name, connected, __version__)
