"""Placing an order exactly once, whatever the network does.

``KisRestClient.place_order`` sends once. This module decides what a failure means:
* a gateway refusal (rate limit, token trouble) or a connection that never opened proves the order
  was not placed: it is sent again after a back-off, a bounded number of times;
* a timeout, a dropped reply or a 5xx without a KIS envelope leaves the outcome unknown: today's
  orders for the same stock and side are listed again and compared with the list taken just before
  sending. A new order with the same quantity and price is ours; if none shows up after several
  looks, the outcome stays unknown (:class:`KisOrderUncertain`) and nothing is re-sent.
Orders of one account go one at a time, so two of ours can never be confused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from dataclasses import dataclass

from chatbot.kis import protocol as p
from chatbot.kis.errors import (
    KisAuthError,
    KisError,
    KisGatewayError,
    KisOrderUncertain,
    KisServerError,
    KisTokenExpired,
    KisTokenIssueThrottled,
    KisTransportError,
)
from chatbot.kis.models import KST, Execution, OrderAck, OrderSide
from chatbot.kis.rest import KisRestClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    ack: OrderAck
    attempts: int
    reconciled: bool  # True when the order number was found by lookup after an unknown outcome


class OrderSubmitter:
    def __init__(self, client: KisRestClient, *, definitive_retries: int = 4, lookups: int = 5,
                 lookup_interval: float = 1.0) -> None:
        self.client = client
        self.definitive_retries = definitive_retries
        self.lookups = lookups
        self.lookup_interval = lookup_interval
        self._lock = asyncio.Lock()

    async def place(self, side: OrderSide, code: str, quantity: int, price: int | None) -> PlacedOrder:
        async with self._lock:
            before = await self._known_orders(code, side)
            attempt = 0
            while True:
                attempt += 1
                try:
                    ack = await self.client.place_order(side, code, quantity, price)
                    return PlacedOrder(ack, attempt, reconciled=False)
                except KisTokenIssueThrottled:
                    raise  # not placed; waiting a minute is the caller's decision
                except (KisGatewayError, KisTransportError, KisServerError) as exc:
                    if isinstance(exc, KisAuthError) and not isinstance(exc, KisTokenExpired):
                        raise  # a refused app key: not placed, and sending again cannot help
                    if _proves_not_placed(exc):
                        if attempt > self.definitive_retries:
                            raise
                        log.warning("order refused by the gateway; sending again",
                                    extra={"msg_cd": exc.msg_cd, "attempt": attempt})
                        await asyncio.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random()))
                        continue
                    log.warning("order outcome unknown; reconciling", extra={"error": type(exc).__name__})
                    found = await self._reconcile(before, side, code, quantity, price)
                    if found is not None:
                        return PlacedOrder(found, attempt, reconciled=True)
                    raise KisOrderUncertain(
                        "KIS did not answer and the order was not found in today's orders",
                        msg_cd=exc.msg_cd, msg1=exc.msg1) from exc

    async def _known_orders(self, code: str, side: OrderSide) -> set[str]:
        today = dt.datetime.now(KST).date()
        return {e.order_no for e in await self.client.executions(today, today, code=code, side=side)}

    async def _reconcile(self, before: set[str], side: OrderSide, code: str, quantity: int,
                         price: int | None) -> OrderAck | None:
        today = dt.datetime.now(KST).date()
        for look in range(self.lookups):
            if look:
                await asyncio.sleep(self.lookup_interval)
            try:
                rows = await self.client.executions(today, today, code=code, side=side)
            except KisError as exc:
                log.warning("reconciliation lookup failed", extra={"error": type(exc).__name__})
                continue
            for row in rows:
                if row.order_no not in before and _matches(row, quantity, price):
                    log.info("order found after an unknown outcome", extra={"order_no": row.order_no})
                    return OrderAck(order_no=row.order_no, branch=row.branch, time=row.time)
        return None


def _matches(row: Execution, quantity: int, price: int | None) -> bool:
    if row.cancelled or row.original_order_no or row.quantity != quantity:
        return False
    if price is None:
        return row.division == p.OrderDivision.MARKET
    return row.division == p.OrderDivision.LIMIT and row.price == price


def _proves_not_placed(exc: KisError) -> bool:
    if isinstance(exc, KisGatewayError):
        return True  # EGW… refusals happen before the broker's ledger
    return exc.maybe_sent is False
