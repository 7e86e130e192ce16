"""US reservation orders (KIS_OVERSEAS.md §9) from chat: listed by /orders, cancelled by /cancel.

A US limit order confirmed outside US hours becomes a KIS reservation (``order-resv``), sent by KIS
at the next regular open. Until then it is no order: ``inquire-nccs`` does not list it, and only the
reservation-cancel call (``order-resv-ccnl``, ``TTTT3017U``) takes it back, by its reservation number
and the KST date KIS received it.

Where the pending reservations come from:

* a real account: KIS's reservation list (``order-resv-list``, ``TTTT3039R``), the rows neither
  cancelled, nor sent, nor refused at the open;
* a paper account (KIS's paper server offers no list): the user's own journal — the reservations it
  accepted whose open has not come yet, less those a later cancel took back.

Either way only the user's own reservations are found, so another user's number is "no such order".
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlmodel import col, select

from chatbot.kis.models import OrderSide
from chatbot.kis.overseas_protocol import UsOrderDivision
from chatbot.kis.protocol import order_no_key
from chatbot.markets.money import Currency, Money
from chatbot.markets.us_hours import SEOUL
from chatbot.service.errors import kis_errors
from chatbot.service.inputs import parse_order_no
from chatbot.service.us_views import UsPendingReservation
from chatbot.service.views import OrderCard
from chatbot.storage.tables import OrderJournalRow

if TYPE_CHECKING:
    from chatbot.service.us_orders import UsOrders

# The card of a reservation's cancel: action "cancel", this order type (the journal row keeps it).
RESERVATION_TYPE = "RESV"
LOOK_BACK = dt.timedelta(days=7)  # a reservation is for the next open; a week covers long holidays


class UsReservations:
    def __init__(self, orders: UsOrders) -> None:
        self.us = orders

    async def pending(self, user_id: int, *, exclude_journal: int | None = None) -> list[UsPendingReservation]:
        """The user's reservations still waiting for their open, newest first (``exclude_journal``: the
        journal row of the cancel being sent, which must not hide its own reservation)."""
        market = self.us.market
        state = market.calendar.state()
        now = state.now
        broker = await market.broker_for(user_id)
        if not broker.client.paper:
            today = now.astimezone(SEOUL).date()
            with kis_errors():
                rows = await broker.client.reservations(today - LOOK_BACK, today)
            out = []
            for r in rows:
                if r.cancelled or r.order_no or r.reason or not r.reservation_no:
                    continue
                listed = market.by_code(r.symbol)
                out.append(UsPendingReservation(
                    reservation_no=r.reservation_no, received_date=r.received_date, symbol=r.symbol,
                    name=listed.name_ko if listed is not None and listed.name_ko else (r.name or r.symbol),
                    exchange=r.exchange.name if r.exchange is not None else "NASDAQ", side=r.side,
                    quantity=r.quantity, price=r.price, order_type=UsOrderDivision.LIMIT.name,
                    sent_at=market.calendar.state(
                        dt.datetime.combine(r.received_date, dt.time(12), SEOUL)).next_open.astimezone(SEOUL)))
            return out
        return await self._from_journal(user_id, now, exclude_journal)

    async def _from_journal(self, user_id: int, now: dt.datetime, exclude_journal: int | None) -> list[UsPendingReservation]:
        journal = self.us.orders.journal
        since = now - LOOK_BACK
        async with journal.db.session() as session:
            rows = (await session.exec(select(OrderJournalRow).where(
                col(OrderJournalRow.owner_id) == user_id, col(OrderJournalRow.market) == "US",
                col(OrderJournalRow.environment) == self.us.mode.setting,
                col(OrderJournalRow.created_at) >= since))).all()
        taken_back = {order_no_key(r.original_order_no) for r in rows
                      if r.action == "cancel" and r.id != exclude_journal and r.order_type == RESERVATION_TYPE and r.original_order_no
                      and r.status in ("accepted", "submitting", "uncertain")}
        out = []
        for r in sorted(rows, key=lambda x: x.created_at, reverse=True):
            if r.action != "reserve" or r.status != "accepted" or not r.kis_order_no:
                continue
            if order_no_key(r.kis_order_no) in taken_back:
                continue
            sent_at = self.us.market.calendar.state(r.created_at).next_open.astimezone(SEOUL)
            if now >= sent_at:  # KIS sent it at that open: an order now (or refused), not a reservation
                continue
            listed = self.us.market.by_code(r.code)
            out.append(UsPendingReservation(
                reservation_no=r.kis_order_no, received_date=r.created_at.astimezone(SEOUL).date(), symbol=r.code,
                name=listed.name_ko if listed is not None and listed.name_ko else r.code,
                exchange=r.exchange or "NASDAQ", side=OrderSide(r.side), quantity=r.quantity,
                price=Money.usd(r.price or 0), order_type=r.order_type or UsOrderDivision.LIMIT.name,
                sent_at=sent_at))
        return out

    async def find(self, user_id: int, reservation_no_text: str, *, exclude_journal: int | None = None
                   ) -> UsPendingReservation | None:
        """One of the user's own pending reservations by its number, or None."""
        wanted = parse_order_no(reservation_no_text)
        return next((r for r in await self.pending(user_id, exclude_journal=exclude_journal) if order_no_key(r.reservation_no) == wanted), None)

    async def prepare_cancel(self, user_id: int, chat_id: int, r: UsPendingReservation) -> OrderCard:
        """A card for cancelling a pending reservation: the same single-use, owner-only, expiring claim."""
        orders = self.us.orders
        orders.check_real_allowed()
        row = await orders.cards.create(
            owner_id=user_id, chat_id=chat_id, environment=self.us.mode.setting, action="cancel",
            side=r.side.value, code=r.symbol, name=r.name[:80], quantity=r.quantity,
            price=r.price.amount or None, quoted_price=r.price.amount, currency=Currency.USD.value,
            order_no=r.reservation_no, branch=r.received_date.strftime("%Y%m%d"), market="US",
            exchange=r.exchange, order_type=RESERVATION_TYPE)
        return self.us.card(row)
