"""The US side of the service, handed to front ends as :attr:`Services.us`."""

from __future__ import annotations

from dataclasses import dataclass

from chatbot.service.us_account import UsAccountService
from chatbot.service.us_alerts import UsAlerts
from chatbot.service.us_market import UsMarketData
from chatbot.service.us_orders import UsOrders


@dataclass(frozen=True, slots=True)
class UsServices:
    market: UsMarketData  # which text names a US stock, quotes, sessions
    account: UsAccountService  # /balance's US part
    alerts: UsAlerts | None  # /alert on US tickers (None: no market-data feed)
    orders: UsOrders  # /buy, /sell, /cancel, /modify of US orders (cards submitted through Orders.confirm)
