"""The user's account as they see it: the balance, today's open orders, and (simulator mode) a card
for starting the paper account over, read through the user's broker (the port). Which account,
client and broker a user has is :mod:`chatbot.service.accounts`'s."""

from __future__ import annotations

import dataclasses

from chatbot.service.accounts import AccountProvider
from chatbot.service.cards import CardStore, card_view
from chatbot.service.errors import UserError, kis_errors
from chatbot.service.market_data import MarketData
from chatbot.service.names import SymbolNames
from chatbot.service.views import BalanceView, Mode, OpenOrdersView, OrderCard, OrderSide
from chatbot.symbols import Symbol


class AccountService:
    def __init__(self, accounts: AccountProvider, market: MarketData, cards: CardStore, mode: Mode) -> None:
        self.accounts = accounts
        self.market = market
        self.cards = cards
        self.mode = mode
        self.names = SymbolNames(market.symbols)  # KIS names its stocks in Korean; an English reader reads them so

    async def balance(self, user_id: int, language: str = "ko") -> BalanceView:
        """The balance, each holding named as a ``language`` reader reads it."""
        self.market.check_maintenance()
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            balance = await account.broker.balance()
        holdings = tuple(dataclasses.replace(h, name=self.names.name(h.symbol, h.name, language))
                         for h in balance.holdings)
        return BalanceView(self.mode, dataclasses.replace(balance, holdings=holdings), str(account.account))

    async def open_orders(self, user_id: int, language: str = "ko") -> OpenOrdersView:
        """Today's open orders, each stock named as a ``language`` reader reads it."""
        self.market.check_maintenance()
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            orders = await account.broker.open_orders()
        return OpenOrdersView(self.mode, tuple(dataclasses.replace(o, name=self.names.name(o.symbol, o.name, language))
                                               for o in orders))

    async def prepare_reset(self, user_id: int, chat_id: int) -> OrderCard:
        """A card for restarting the user's paper account (simulator mode only); confirmed like any card
        (:meth:`chatbot.service.orders.Orders.confirm`)."""
        if self.mode is not Mode.PAPER:
            raise UserError("reset_paper_only")
        row = await self.cards.create(owner_id=user_id, chat_id=chat_id, environment=self.mode.setting,
                                      action="reset", side=OrderSide.BUY.value, code="", name="", quantity=0,
                                      price=None, quoted_price=0)
        return card_view(row, Symbol("", "", "", ""), self.mode, self.market.calendar,
                         int(self.cards.ttl.total_seconds()))
