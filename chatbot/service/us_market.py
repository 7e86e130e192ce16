"""US stocks a user asks about: which ticker a text names, its quote in dollars with the session it
trades in, and a KRW estimate at the rate KIS reports.

A text names a US stock when the KRX directory does not name one exactly and the US directory does
(``AAPL``, ``애플``, ``QQQ``); ``삼성`` stays a KRX question (candidates there), so domestic behaviour
is unchanged."""

from __future__ import annotations

import weakref
from decimal import Decimal

from chatbot.kis.errors import KisError
from chatbot.kis.overseas import KisOverseasClient
from chatbot.kis.overseas_models import UsQuoteDetail
from chatbot.kis.overseas_orders import UsOrderSubmitter
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.kis.rest import KisRestClient
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.money import Money
from chatbot.markets.symbols import Symbol
from chatbot.markets.us_hours import SEOUL, UsCalendar, UsMarketState
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import kis_errors
from chatbot.service.inputs import MAX_ARG_LENGTH
from chatbot.service.us_views import UsQuoteView


class UsMarketData:
    def __init__(self, accounts: AccountProvider, symbols: SymbolDirectory, calendar: UsCalendar) -> None:
        self.accounts = accounts
        self.symbols = symbols
        self.calendar = calendar
        # one overseas client and one submitter (its lock: one order at a time) per REST client
        self._clients: weakref.WeakKeyDictionary[KisRestClient, tuple[KisOverseasClient, UsOrderSubmitter]] = (
            weakref.WeakKeyDictionary())
        self.last_rate = Decimal(0)  # KRW per USD as KIS last reported it (cards' KRW estimate)

    # -- which market ------------------------------------------------------------------------------------
    def lookup(self, text: str) -> Symbol | None:
        """The US stock ``text`` names, or None when it is a KRX question (or names nothing)."""
        text = text.strip()
        if not text or len(text) > MAX_ARG_LENGTH:
            return None
        if self.symbols.lookup(text).symbol is not None:  # an exact KRX match stays domestic
            return None
        return self.symbols.lookup(text, "US").symbol

    def by_code(self, code: str) -> Symbol | None:
        return self.symbols.by_code(code, "US")

    def state(self) -> UsMarketState:
        return self.calendar.state()

    # -- clients -------------------------------------------------------------------------------------------
    def clients(self, rest: KisRestClient) -> tuple[KisOverseasClient, UsOrderSubmitter]:
        found = self._clients.get(rest)
        if found is None:
            client = KisOverseasClient(rest)
            found = (client, UsOrderSubmitter(client))
            self._clients[rest] = found
        return found

    async def client_for(self, user_id: int) -> KisOverseasClient:
        account = await self.accounts.for_user(user_id)
        return self.clients(account.client)[0]

    # -- quotes --------------------------------------------------------------------------------------------
    async def detail(self, client: KisOverseasClient, symbol: Symbol) -> UsQuoteDetail | None:
        """price-detail (day range, limits, KIS's KRW rate), or None where KIS does not give it."""
        try:
            detail = await client.quote_detail(symbol.code, UsExchange.of_market(symbol.market))
        except KisError:
            return None
        if detail.krw_per_usd > 0:
            self.last_rate = detail.krw_per_usd
        return detail

    async def quote(self, user_id: int, symbol: Symbol) -> UsQuoteView:
        client = await self.client_for(user_id)
        exchange = UsExchange.of_market(symbol.market)
        with kis_errors():
            q = await client.quote(symbol.code, exchange)
        detail = await self.detail(client, symbol)
        state = self.calendar.state()
        rate = detail.krw_per_usd if detail is not None else Decimal(0)
        return UsQuoteView(
            symbol=symbol, exchange=exchange.name, price=q.price, change=q.change, change_rate=q.change_rate,
            sign=q.sign, previous_close=q.previous_close,
            open=detail.open if detail else None, high=detail.high if detail else None,
            low=detail.low if detail else None, volume=q.volume, session=state.phase.value,
            next_open=state.next_open.astimezone(SEOUL), krw_per_usd=rate,
            price_krw=Money.krw((q.price.amount * rate).quantize(Decimal(1))) if rate > 0 else None,
            tradable=detail.tradable if detail else True)
