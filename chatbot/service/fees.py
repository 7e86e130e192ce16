"""Estimated trading costs shown on an order card (the broker's statement is authoritative).

The rates live in the market profile (:mod:`chatbot.markets.fees`); this is the won-denominated
entry the KRX order path uses."""

from __future__ import annotations

from decimal import Decimal

from chatbot.broker import OrderSide
from chatbot.markets.fees import KRX_FEES
from chatbot.markets.money import Money

COMMISSION_RATE: Decimal = KRX_FEES.commission_rate
SELL_TAX_RATE: Decimal = KRX_FEES.sell_tax_rate


def estimate(side: OrderSide, amount: int) -> tuple[int, int]:
    """(commission, tax) in won for an order of ``amount`` won."""
    commission, tax = KRX_FEES.estimate(Money.krw(amount), sell=side is OrderSide.SELL)
    return int(commission.amount), int(tax.amount)
