"""Estimated trading costs per market (the broker's statement is authoritative).

Rates are estimates shown on an order card before the owner confirms. Costs are rounded down to the
currency's places (whole won, cents), never up: an estimate that overstates is harmless, but one that
disagrees with the statement by a rounding direction reads as a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from chatbot.markets.money import Currency, Money


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    currency: Currency
    commission_rate: Decimal  # both sides
    sell_tax_rate: Decimal  # on sells only (KRX: securities transaction tax + rural special tax)

    def estimate(self, amount: Money, *, sell: bool) -> tuple[Money, Money]:
        """(commission, tax) on an order of ``amount``, each rounded down to the currency's places."""
        if amount.currency is not self.currency:
            raise ValueError(f"fees in {self.currency} for an amount in {amount.currency}")
        quantum = self.currency.quantum
        commission = (amount.amount * self.commission_rate).quantize(quantum, ROUND_DOWN)
        tax = (amount.amount * self.sell_tax_rate).quantize(quantum, ROUND_DOWN) if sell else Decimal(0)
        return Money(commission, self.currency), Money(tax, self.currency)


# KRX: online brokerage commission (typical KIS rate), and the sell-side tax in force for 2026.
KRX_FEES = FeeSchedule(Currency.KRW, commission_rate=Decimal("0.00015"), sell_tax_rate=Decimal("0.0020"))
# US: KIS's online US commission (the simulator's rate, chatbot.sim.us_trading); the SEC fee and
# FINRA TAF on sells are a few cents per thousand dollars and left to the statement (an estimate).
US_FEES = FeeSchedule(Currency.USD, commission_rate=Decimal("0.0025"), sell_tax_rate=Decimal(0))
