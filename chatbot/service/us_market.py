"""US stocks a user asks about: which ticker a text names, its quote in dollars with the session it
trades in, and a KRW estimate at the rate KIS reports. KIS is reached through the broker port
(:class:`chatbot.kis.us_broker.UsBroker`, one per account).

A text names a US stock when the KRX directory does not name one exactly and the US directory does
(``AAPL``, ``애플``, ``QQQ``); ``삼성`` stays a KRX question (candidates there), so domestic behaviour
is unchanged."""

from __future__ import annotations

import weakref
from decimal import Decimal

from chatbot.kis.overseas import KisOverseasClient
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.kis.rest import KisRestClient
from chatbot.kis.us_broker import UsBroker
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
        # one US broker (its submitter's lock: one order at a time) per account's REST client
        self._brokers: weakref.WeakKeyDictionary[KisRestClient, UsBroker] = weakref.WeakKeyDictionary()
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

    def exchange_of(self, code: str) -> UsExchange | None:
        found = self.by_code(code)
        return UsExchange.of_market(found.market) if found is not None else None

    def state(self) -> UsMarketState:
        return self.calendar.state()

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
