"""Wiring of the US side (called once by the runtime)."""

from __future__ import annotations

from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.us_hours import UsCalendar
from chatbot.service.accounts import AccountProvider
from chatbot.service.alerts import AlertService
from chatbot.service.orders import Orders
from chatbot.service.us import UsServices
from chatbot.service.us_account import UsAccountService
from chatbot.service.us_alerts import UsAlerts
from chatbot.service.us_market import UsMarketData
from chatbot.service.us_orders import UsOrders


def build_us(accounts: AccountProvider, directory: SymbolDirectory, orders: Orders, alerts: AlertService, *,
             always_open: bool = False) -> UsServices:
    """The US services; ``always_open``: the simulator's switch that keeps the US market open (tests)."""
    market = UsMarketData(accounts, directory, UsCalendar(always_open))
    market.check_maintenance = orders.market.check_maintenance
    us_orders = UsOrders(orders, market)
    return UsServices(market=market, account=UsAccountService(market, orders.mode, us_orders.trades_us),
                      alerts=UsAlerts(alerts, market), orders=us_orders)
