"""Placing an order exactly once, whatever the network does.

``KisRestClient.place_order`` sends once. This module decides what a failure means:
* a gateway refusal (rate limit, token trouble) or a connection that never opened proves the order
  was not placed: it is sent again after a back-off, a bounded number of times (a revision or a
  cancellation too);
* a timeout, a dropped reply or a 5xx without a KIS envelope leaves the outcome unknown: today's
  orders for the same stock and side are listed again and compared with the list taken just before
  sending. A new order with the same quantity and price is ours; if none shows up after several
  looks, the outcome stays unknown (:class:`KisOrderUncertain`) and nothing is re-sent.
Orders of one account go one at a time, so two of ours can never be confused.

Before anything is sent, ``on_sending`` is called with that snapshot: the caller makes it durable (the
order journal), so that a process killed while the request is in flight knows afterwards what it
may have sent and what to look for (:func:`find_candidates`, used by the service's reconciliation).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Collection
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
from chatbot.kis.models import Execution, OrderAck, OrderSide
from chatbot.kis.protocol import KST
from chatbot.kis.rest import KisRestClient

log = logging.getLogger(__name__)


OnSending = Callable[[set[str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What was (or may have been) sent: a new order, or the cancellation (or, with ``revise``, the
    revision to ``price``) of ``original_order_no``."""

    side: OrderSide
    code: str
    quantity: int
    price: int | None  # None: market order
    original_order_no: str | None = None  # set for a cancellation or a revision
    revise: bool = False  # with original_order_no: a revision, listed as a new row pointing back to it


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

    async def place(self, side: OrderSide, code: str, quantity: int, price: int | None, *,
                    on_sending: OnSending | None = None) -> PlacedOrder:
        """Send the order once (definitive refusals again, a bounded number of times). ``on_sending``
        gets the snapshot of today's orders before the first byte leaves; if it raises, nothing is sent."""
        async with self._lock:
            before = await self._known_orders(code, side)
            if on_sending is not None:
                await on_sending(before)
            attempts = [0]
            try:
                ack = await self._send(lambda: self.client.place_order(side, code, quantity, price), attempts)
                return PlacedOrder(ack, attempts[0], reconciled=False)
            except (KisGatewayError, KisTransportError, KisServerError) as exc:
                if _proves_not_placed(exc):
                    raise
                log.warning("order outcome unknown; reconciling", extra={"error": type(exc).__name__})
                found = await self._reconcile(before, side, code, quantity, price)
                if found is not None:
                    return PlacedOrder(found, attempts[0], reconciled=True)
                raise KisOrderUncertain(
                    "KIS did not answer and the order was not found in today's orders",
                    msg_cd=exc.msg_cd, msg1=exc.msg1) from exc

    async def _send(self, send: Callable[[], Awaitable[OrderAck]], attempts: list[int]) -> OrderAck:
        """Send once; again (after a back-off, a bounded number of times) only what the gateway refused or
        what never left (proven not to have reached the ledger). ``attempts[0]`` counts the sends."""
        while True:
            attempts[0] += 1
            try:
                return await send()
            except KisTokenIssueThrottled:
                raise  # not placed; waiting a minute is the caller's decision
            except (KisGatewayError, KisTransportError, KisServerError) as exc:
                if isinstance(exc, KisAuthError) and not isinstance(exc, KisTokenExpired):
                    raise  # a refused app key: not placed, and sending again cannot help
                if not _proves_not_placed(exc) or attempts[0] > self.definitive_retries:
                    raise
                log.warning("order refused by the gateway; sending again",
                            extra={"msg_cd": exc.msg_cd, "attempt": attempts[0]})
                await asyncio.sleep(min(2.0, 0.2 * 2 ** (attempts[0] - 1)) * (0.5 + random.random()))

    async def cancel(self, order_no: str, branch: str, side: OrderSide, code: str, *, exchange: str | None = None,
                     on_sending: OnSending | None = None) -> OrderAck:
        """Cancel the rest of an order on the order's own exchange (``exchange`` as listed for it; None: the
        client looks it up), sent once (again only what the gateway refused, as :meth:`place`), after the same
        snapshot as :meth:`place` (a cancel is a row of the day's list too, carrying the number of the order it
        cancels)."""
        async with self._lock:
            before = await self._known_orders(code, side)
            if on_sending is not None:
                await on_sending(before)
            return await self._send(lambda: self.client.cancel_order(order_no, branch, exchange=exchange), [0])

    async def revise(self, order_no: str, branch: str, side: OrderSide, code: str, price: int, quantity: int, *,
                     all_remaining: bool, exchange: str, on_sending: OnSending | None = None) -> OrderAck:
        """Revise an order to ``price`` — what is left of it (``all_remaining``, ``QTY_ALL_ORD_YN=Y``) or
        ``quantity`` of it — on the order's own exchange, sent once (again only what the gateway refused), after
        the same snapshot as :meth:`cancel` (the revision is a new row of the day's list pointing back to the order)."""
        async with self._lock:
            before = await self._known_orders(code, side)
            if on_sending is not None:
                await on_sending(before)
            return await self._send(lambda: self.client.revise_order(
                order_no, branch, price, 0 if all_remaining else quantity, exchange=exchange), [0])

    async def _known_orders(self, code: str, side: OrderSide) -> set[str]:
        today = dt.datetime.now(KST).date()
        return {e.order_no for e in await self.client.executions(today, today, code=code, side=side)}

    async def _reconcile(self, before: set[str], side: OrderSide, code: str, quantity: int,
                         price: int | None) -> OrderAck | None:
        today = dt.datetime.now(KST).date()
        intent = OrderIntent(side, code, quantity, price)
        for look in range(self.lookups):
            if look:
                await asyncio.sleep(self.lookup_interval)
            try:
                found = await find_candidates(self.client, today, intent, before)
            except KisError as exc:
                log.warning("reconciliation lookup failed", extra={"error": type(exc).__name__})
                continue
            if found:
                row = found[0]
                log.info("order found after an unknown outcome", extra={"order_no": row.order_no})
                return OrderAck(order_no=row.order_no, branch=row.branch, time=row.time)
        return None


async def find_candidates(client: KisRestClient, day: dt.date, intent: OrderIntent, known: Collection[str], *,
                          listed_from: str = "") -> list[Execution]:
    """One look at ``day``'s orders for the intent's code and side: the rows that could be the order
    sent — matching it, and not among ``known`` (the snapshot taken before sending) — oldest first.
    ``listed_from`` (HHMMSS) drops rows listed earlier, for a sending whose snapshot was not kept.
    Raises :class:`KisError` when KIS cannot be asked (the caller looks again later)."""
    rows = await client.executions(day, day, code=intent.code, side=intent.side)
    found = [r for r in rows if r.order_no not in known and matches(r, intent)
             and (not listed_from or not r.time or r.time >= listed_from)]
    return sorted(found, key=lambda r: (r.time, r.order_no))


def matches(row: Execution, intent: OrderIntent) -> bool:
    """Could this row of the day's list be the order (or cancellation) described by ``intent``?"""
    if intent.original_order_no is not None:  # a cancellation or revision: a row acting on that order
        if p.order_no_key(row.original_order_no) != p.order_no_key(intent.original_order_no):
            return False
        if not intent.revise:
            return row.cancelled
        return not row.cancelled and (row.price == intent.price if intent.price is not None
                                      else row.division == p.OrderDivision.MARKET)
    if row.cancelled or row.original_order_no or row.quantity != intent.quantity:
        return False
    if intent.price is None:
        return row.division == p.OrderDivision.MARKET
    return row.division == p.OrderDivision.LIMIT and row.price == intent.price


def _proves_not_placed(exc: KisError) -> bool:
    if isinstance(exc, KisGatewayError):
        return True  # EGW… refusals happen before the broker's ledger
    return exc.maybe_sent is False
