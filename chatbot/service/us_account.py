"""The US side of a user's account: holdings in dollars, dollar cash, and the totals in both
currencies at the rate KIS values the account at (KRW figures are estimates)."""

from __future__ import annotations

import logging
from decimal import Decimal

from chatbot.kis.errors import KisError
from chatbot.markets.money import Money
from chatbot.service.us_market import UsMarketData
from chatbot.service.us_views import UsBalanceView, UsHoldingLine

log = logging.getLogger(__name__)


class UsAccountService:
    def __init__(self, market: UsMarketData) -> None:
        self.market = market

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
