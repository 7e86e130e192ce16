"""Estimated costs of a US order shown on its card (KIS's statement is authoritative): KIS's online
commission on both sides, and on sells the SEC fee and FINRA's trading activity fee, in dollars."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

from chatbot.kis.models import OrderSide
from chatbot.kis.overseas_models import Money

COMMISSION_RATE = Decimal("0.0025")  # KIS online US commission, typical (estimate; accounts differ)
SEC_FEE_RATE = Decimal("0.0000278")  # SEC Section 31 fee on sells ($27.80 per million, FY2025)
FINRA_TAF_PER_SHARE = Decimal("0.000166")  # FINRA trading activity fee on sells
FINRA_TAF_MAX = Decimal("8.30")
CENT = Decimal("0.01")


def estimate(side: OrderSide, amount: Money, quantity: int) -> Money:
    """Commission plus, on a sell, the SEC and FINRA fees, each rounded up to the cent."""
    commission = (amount.amount * COMMISSION_RATE).quantize(CENT, ROUND_UP)
    if side is OrderSide.BUY:
        return Money(commission, "USD")
    sec = (amount.amount * SEC_FEE_RATE).quantize(CENT, ROUND_UP)
    taf = min(FINRA_TAF_PER_SHARE * quantity, FINRA_TAF_MAX).quantize(CENT, ROUND_UP)
    return Money(commission + sec + taf, "USD")
