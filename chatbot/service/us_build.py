"""Wiring of the US side (called once by the runtime)."""

from __future__ import annotations

from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.us_hours import UsCalendar
from chatbot.service.accounts import AccountProvider
from chatbot.service.us import UsServices
from chatbot.service.us_market import UsMarketData


def build_us(accounts: AccountProvider, directory: SymbolDirectory, *, always_open: bool = False) -> UsServices:
    """The US services; ``always_open``: the simulator's switch that keeps the US market open (tests)."""
    calendar = UsCalendar(always_open)
    return UsServices(market=UsMarketData(accounts, directory, calendar))
