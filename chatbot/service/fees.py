"""Estimated trading costs shown on an order card (the broker's statement is authoritative)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from chatbot.kis.models import OrderSide

COMMISSION_RATE = Decimal("0.00015")  # online brokerage commission, both sides (typical KIS rate, estimate)
SELL_TAX_RATE = Decimal("0.0020")  # securities transaction tax + rural special tax on sells (2026)


def estimate(side: OrderSide, amount: int) -> tuple[int, int]:
    """(commission, tax) in won for an order of ``amount`` won."""
    commission = int((Decimal(amount) * COMMISSION_RATE).to_integral_value(ROUND_DOWN))
    tax = int((Decimal(amount) * SELL_TAX_RATE).to_integral_value(ROUND_DOWN)) if side is OrderSide.SELL else 0
    return commission, tax
