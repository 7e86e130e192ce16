"""The US side of a user's account: holdings in dollars, dollar cash, and the totals in both
currencies at the rate KIS values the account at (KRW figures are estimates)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

from chatbot.kis.errors import KisError
from chatbot.markets.money import Money
from chatbot.service.us_market import UsMarketData
from chatbot.service.us_views import UsBalanceView, UsHoldingLine
from chatbot.service.views import Mode

log = logging.getLogger(__name__)


class UsAccountService:
    def __init__(self, market: UsMarketData, mode: Mode, trades_us: Callable[[int], Awaitable[bool]]) -> None:
        self.market = market
        self.mode = mode
        self.trades_us = trades_us  # whether the user has sent a US order through the bot

    async def in_balance(self, user_id: int, domestic_total: Money | None, asked: bool = False) -> UsBalanceView | None:
        """The US part of /balance. A user who trades US through the bot, or asks (``/balance us``), gets
        it whole. Otherwise KIS is asked too — holdings bought elsewhere (the KIS app) are shown — and the
        part is shown when there are US holdings (a paper account's idle dollar cash alone is not news);
        except on KIS's paper server (VIRTUAL), where it costs a query per exchange at 2 requests/s.
        Real KIS answers every US exchange in one query; the simulator is local."""
        if asked or await self.trades_us(user_id):
            return await self.balance(user_id, domestic_total)
        if self.mode is Mode.VIRTUAL:
            return None
        view = await self.balance(user_id, domestic_total)
        return view if view is not None and view.holdings else None

    async def balance(self, user_id: int, domestic_total: Money | None = None) -> UsBalanceView | None:
        """US holdings and cash (paper: one query per exchange, the client's), or None when the account
        has neither. A KIS failure is said in the view (``unavailable``): the domestic balance stands."""
        broker = await self.market.broker_for(user_id)
        try:
            balance = await broker.balance()
        except KisError as exc:
            log.warning("US balance failed", extra={"error": type(exc).__name__, "msg_cd": exc.msg_cd})
            zero = Money.usd(0)
            return UsBalanceView((), zero, zero, zero, zero, Decimal(0), unavailable=True)
        if not balance.holdings and not balance.cash:
            return None
        rate = self.market.rate(broker)
        holdings = tuple(UsHoldingLine(
            symbol=h.symbol, name=self._name(h.symbol, h.name), exchange=self._exchange(h.symbol),
            quantity=h.quantity, average_cost=h.average_price, last_price=h.price, value=h.value,
            profit_loss=h.profit_loss, profit_loss_rate=h.profit_loss_rate) for h in balance.holdings)
        view = UsBalanceView(holdings, balance.cash, balance.holdings_value, balance.cost_total,
                             balance.profit_loss_total, rate)
        us_krw = view.krw(view.total)
        if domestic_total is not None and us_krw is not None:
            view = UsBalanceView(holdings, balance.cash, balance.holdings_value, balance.cost_total,
                                 balance.profit_loss_total, rate, combined_krw=domestic_total + us_krw)
        return view

    def _name(self, symbol: str, fallback: str) -> str:
        listed = self.market.by_code(symbol)
        return listed.name_ko if listed is not None and listed.name_ko else (fallback or symbol)

    def _exchange(self, symbol: str) -> str:
        exchange = self.market.exchange_of(symbol)
        return exchange.name if exchange is not None else ""
