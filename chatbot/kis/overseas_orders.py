"""Placing a US order exactly once: :class:`chatbot.kis.orders.OrderSubmitter`'s rules, unchanged.

The domestic submitter owns the rules (a gateway refusal proves nothing was placed and is sent
again; an unknown outcome is looked up in today's orders against a snapshot taken before sending,
never re-sent). It talks to a client through ``place_order`` and ``executions``; :class:`_UsVenue`
answers those for one US order, so the same code runs the same rules:

* prices cross as whole ten-thousandths of a dollar (US prices are on a 0.0001 grid at most), so the
  submitter's equality of prices is exact;
* "today's orders" are the account's US orders of the current trading dates (``inquire-ccnl``),
  each presented as a limit order (KIS's US listings carry no order division; quantity, price,
  side, symbol and newness identify an order, as they do domestically).

Orders of one account go one at a time (one lock per :class:`UsOrderSubmitter`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any, cast

from chatbot.kis import protocol as p
from chatbot.kis.models import Execution, OrderAck, OrderSide
from chatbot.kis.orders import OnSending, OrderSubmitter
from chatbot.kis.overseas import KisOverseasClient, nearest_kst, trading_dates
from chatbot.kis.overseas_models import UsOrderAck, UsPlacedOrder
from chatbot.kis.overseas_protocol import PRICE_DECIMALS, UsExchange, UsOrderDivision
from chatbot.kis.rest import KisRestClient
from chatbot.markets.us_hours import SEOUL

_SCALE = 10**PRICE_DECIMALS


def price_units(price: Decimal | None) -> int:
    """A US price as whole ten-thousandths of a dollar (0 for MOO/MOC)."""
    return int((price or Decimal(0)) * _SCALE)


class _UsVenue:
    """The client interface :class:`OrderSubmitter` uses, for one US order (exchange and division fixed)."""

    def __init__(self, client: KisOverseasClient, exchange: UsExchange, division: UsOrderDivision) -> None:
        self.client = client
        self.exchange = exchange
        self.division = division
        self.ack: UsOrderAck | None = None
        self.symbol = ""  # cancel and revise: the order's ticker
        self.remaining = 0  # revise: what is left of the order (KIS's US revise takes a quantity)

    async def place_order(self, side: OrderSide, code: str, quantity: int, price: int | None) -> OrderAck:
        us_price = Decimal(price or 0) / _SCALE if self.division.priced else None
        self.ack = await self.client.place(self.exchange, side, code, quantity, us_price, self.division)
        return OrderAck(order_no=self.ack.order_no, branch=self.ack.branch,
                        time=self.ack.accepted_at.astimezone(SEOUL).strftime("%H%M%S"))

    def _plain(self, ack: UsOrderAck) -> OrderAck:
        return OrderAck(order_no=ack.order_no, branch=ack.branch, time=ack.accepted_at.astimezone(SEOUL).strftime("%H%M%S"))

    async def cancel_order(self, order_no: str, branch: str, *, exchange: str | None = None) -> OrderAck:
        """What :meth:`OrderSubmitter.cancel` sends: all that remains of the order (``symbol`` set first) on
        :attr:`exchange` (``exchange`` is the domestic listing's word, not used here)."""
        self.ack = await self.client.cancel(self.exchange, self.symbol, order_no)
        return self._plain(self.ack)

    async def revise_order(self, order_no: str, branch: str, price: int, quantity: int, *, exchange: str) -> OrderAck:
        """What :meth:`OrderSubmitter.revise` sends; ``quantity`` 0 is all that remains (``remaining``)."""
        self.ack = await self.client.revise(self.exchange, self.symbol, order_no, quantity or self.remaining,
                                            Decimal(price) / _SCALE)
        return self._plain(self.ack)

    async def executions(self, start: dt.date, end: dt.date, *, code: str = "", side: OrderSide | None = None,
                         unfilled_only: bool = False, **_: Any) -> list[Execution]:
        # KIS files a US order under the New York date: a KST day spans that date and the day before
        first, last = min(start - dt.timedelta(days=1), trading_dates()[0]), max(end, trading_dates()[1])
        rows = await self.client.orders(first, last, symbol=code, side=side, filled=False if unfilled_only else None)
        return [Execution(
            date=r.local_time.strftime("%Y%m%d") if r.local_time else "",
            time=r.kst_time.strftime("%H%M%S") if r.kst_time else "", order_no=r.order_no, branch=r.branch,
            original_order_no=r.original_order_no, code=r.symbol, name=r.name, side=r.side,
            division=p.OrderDivision.LIMIT, quantity=r.quantity, price=price_units(r.price.amount),
            filled_quantity=r.filled_quantity, average_fill_price=r.fill_price.amount,
            remaining_quantity=r.unfilled_quantity, rejected_quantity=r.quantity if r.rejected_reason else 0,
            cancelled=r.is_cancellation, filled_amount=r.filled_amount.amount) for r in rows]


def us_order_listing(client: KisOverseasClient) -> KisRestClient:
    """The day's US orders behind the interface :func:`chatbot.kis.orders.find_candidates` reads
    (``executions``): reconciliation looks for a US order exactly as for a domestic one."""
    return cast(KisRestClient, _UsVenue(client, UsExchange.NASDAQ, UsOrderDivision.LIMIT))


class UsOrderSubmitter:
    """One account's US orders, each placed under :class:`OrderSubmitter`'s once-only rules."""

    def __init__(self, client: KisOverseasClient, *, definitive_retries: int = 4, lookups: int = 5,
                 lookup_interval: float = 1.0) -> None:
        self.client = client
        self.definitive_retries = definitive_retries
        self.lookups = lookups
        self.lookup_interval = lookup_interval
        self._lock = asyncio.Lock()

    def _submitter(self, venue: _UsVenue) -> OrderSubmitter:
        # OrderSubmitter is typed on KisRestClient but uses only the methods _UsVenue provides.
        return OrderSubmitter(cast(KisRestClient, venue), definitive_retries=self.definitive_retries,
                              lookups=self.lookups, lookup_interval=self.lookup_interval)

    async def place(self, exchange: UsExchange, side: OrderSide, symbol: str, quantity: int, price: Decimal | None,
                    division: UsOrderDivision = UsOrderDivision.LIMIT, *,
                    on_sending: OnSending | None = None) -> UsPlacedOrder:
        """``on_sending`` gets the snapshot of today's US orders just before the order leaves (the
        caller journals it; when it raises, nothing is sent)."""
        self.client.check_order(side, division, price)  # refuse what KIS does not offer before any call
        venue = _UsVenue(self.client, exchange, division)
        submitter = self._submitter(venue)
        async with self._lock:
            placed = await submitter.place(side, symbol, quantity, price_units(price) if division.priced else 0,
                                           on_sending=on_sending)
        if venue.ack is not None and not placed.reconciled:
            return UsPlacedOrder(venue.ack, placed.attempts, reconciled=False)
        found = placed.ack  # from today's listing: its KST time (thco_ord_tmd) when KIS gives one
        accepted = nearest_kst(found.time, dt.datetime.now(SEOUL))
        return UsPlacedOrder(UsOrderAck(found.order_no, found.branch, exchange, accepted), placed.attempts,
                             reconciled=True)

    async def cancel(self, exchange: UsExchange, side: OrderSide, symbol: str, order_no: str, *,
                     on_sending: OnSending | None = None) -> OrderAck:
        """Cancel all that remains of an order, sent once after the same snapshot as :meth:`place`."""
        venue = _UsVenue(self.client, exchange, UsOrderDivision.LIMIT)
        venue.symbol = symbol
        async with self._lock:
            return await self._submitter(venue).cancel(order_no, "", side, symbol, on_sending=on_sending)

    async def revise(self, exchange: UsExchange, side: OrderSide, symbol: str, order_no: str, price: Decimal,
                     quantity: int, remaining: int, *, on_sending: OnSending | None = None) -> OrderAck:
        """Revise an order to ``price`` for ``quantity`` shares (``remaining``: what is left of it), sent
        once after the same snapshot; KIS gives the revision a new order number."""
        venue = _UsVenue(self.client, exchange, UsOrderDivision.LIMIT)
        venue.symbol, venue.remaining = symbol, remaining
        async with self._lock:
            return await self._submitter(venue).revise(order_no, "", side, symbol, price_units(price),
                                                       0 if quantity >= remaining else quantity,
                                                       all_remaining=quantity >= remaining, exchange=exchange.name,
                                                       on_sending=on_sending)
