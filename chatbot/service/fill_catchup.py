"""Fills made while nobody listened: a replica that takes a user's fill-notice session over (the one
that owned it died), a notice connection that came back after a drop, or a bot started again asks KIS
for the day's executions of that user's open orders, and what filled meanwhile (the broker's list of the day's orders) is journalled and pushed like any fill — once: the journal's filled quantity, read under
the order row's lock, decides what is new, and the push's key names the quantity reached."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from sqlmodel import col, select

from chatbot.alerts import outbox
from chatbot.alerts.notices import OrderFilled
from chatbot.alerts.outbox import Push
from chatbot.broker import Execution
from chatbot.kis.errors import KisError
from chatbot.kis.protocol import KST, order_no_key
from chatbot.markets.money import Currency, Money
from chatbot.service.accounts import AccountProvider, UserAccount
from chatbot.service.fill_prices import ListedPrice, counted_fills, fill_detail, listed_fill_price
from chatbot.service.journal import LISTED, OPEN_STATUSES
from chatbot.service.users import Users
from chatbot.storage.db import Database
from chatbot.storage.tables import OrderEventRow, OrderJournalRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)


def _filed_under(row: OrderJournalRow) -> dt.date:
    """The day KIS files a domestic order under: its KST date. (A US order: not known for sure — its trading day
    starts on the New York day before, with KIS's daytime session — so US orders are matched by number alone.)"""
    return (row.sent_at or row.created_at).astimezone(KST).date() if row.market != "US" else dt.date.min


def _domestic(code: str) -> bool:
    return len(code) == 6 and code[0].isdigit()


async def catch_up_fills(db: Database, accounts: AccountProvider, users: Users, user_id: int,
                         wake_sender: Callable[[], None],
                         hold: Callable[[Sequence[int]], AbstractAsyncContextManager[None]] | None = None) -> int:
    """Journal and push the fills of ``user_id``'s open orders and revisions (last day, KRX and US) that KIS lists
    and the journal lacks; returns how many were pushed. Called after the user's fill feed is listening again.
    A failed look at KIS's US orders is raised after the domestic rows are counted (the caller tries again).

    ``hold``: keeps the live notices of the given journal rows from being counted from KIS's list being read to
    the catch-up's writes (the fill watcher's per-order turns). A notice's fill counted in between would be in the
    journal and not in the list read before it: the catch-up, adding only what the list has beyond the journal,
    would then leave a fill made while nobody listened untold."""
    async with db.session() as session:
        rows = list((await session.exec(select(OrderJournalRow).where(
            col(OrderJournalRow.owner_id) == user_id, col(OrderJournalRow.action).in_(("order", "revise")),
            col(OrderJournalRow.status).in_(OPEN_STATUSES), col(OrderJournalRow.kis_order_no).is_not(None),
            col(OrderJournalRow.created_at) >= utcnow() - dt.timedelta(days=1)))).all())
    rows = [r for r in rows if r.market == "US" or _domestic(r.code)]
    if not rows:
        return 0
    language = await users.language(user_id)
    account = await accounts.for_user(user_id)
    async with (hold or _no_hold)([r.id for r in rows if r.id is not None]):
        pushed, us_failure = await _count_listed(db, account, rows, user_id, language)
    if pushed:
        wake_sender()
    if us_failure is not None:  # the domestic rows are counted; the US ones wait for the caller's next try
        raise us_failure
    return pushed


@contextlib.asynccontextmanager
async def _no_hold(_journal_ids: Sequence[int]) -> AsyncIterator[None]:
    yield


async def _count_listed(db: Database, account: UserAccount, rows: Sequence[OrderJournalRow], user_id: int,
                        language: str) -> tuple[int, KisError | None]:
    """What KIS's list (read now) has of ``rows`` beyond the journal, journalled and queued; how many pushes, and
    why the US rows were left out (KIS's US orders unavailable), if they were: a US fill made while nobody
    listened is told only by a catch-up, so the caller tries again (a try counts only what is still missing)."""
    failures: list[KisError] = []
    listed = await _listed(account, rows, us_failures=failures)
    pushed = 0
    for row in rows:
        execution = _listed_row(listed, row)
        if execution is None or execution.filled_quantity <= 0:
            continue
        async with db.write() as session:
            entry = await session.get(OrderJournalRow, row.id, with_for_update=True)
            if entry is None or entry.id is None or entry.status not in OPEN_STATUSES:
                continue
            before, cost = await counted_fills(session, entry.id, entry.currency)
            if execution.filled_quantity <= before:
                continue
            quantity = execution.filled_quantity - before
            entry.status = "filled" if execution.filled_quantity >= entry.quantity else "partially_filled"
            entry.updated_at = utcnow()
            session.add(entry)
            filled = listed_fills(execution, entry, language, before, listed_price(execution, entry, before, cost))
            session.add(OrderEventRow(journal_id=entry.id, status=entry.status,
                                      detail=fill_detail(quantity, filled.price_money), source=LISTED))
            pushed += await outbox.enqueue(session, [Push(
                f"fill:caught-up:{entry.id}:{execution.filled_quantity}", user_id, user_id, filled)])
        log.info("fill made while no replica listened journalled and pushed",
                 extra={"journal_id": row.id, "order_no": execution.order_no, "quantity": quantity})
    return pushed, (failures[0] if failures else None)


Listing = dict[tuple[str, dt.date, str], Execution]


async def listed_now(account: UserAccount, row: OrderJournalRow) -> Execution | None:
    """The journal ``row``'s order as KIS lists it now (its cumulative filled quantity), None when KIS's list of
    the day's orders does not show it. A failed look raises (:class:`KisError`), whichever the market."""
    return _listed_row(await _listed(account, [row]), row)


async def _listed(account: UserAccount, rows: Sequence[OrderJournalRow], *,
                  us_failures: list[KisError] | None = None) -> Listing:
    """KIS's list of the days ``rows`` were sent on, each market's from its own broker. KIS numbers domestic and
    US orders in books of their own, and anew each day: a number is an order's together with its market and the
    day it is filed under. With ``us_failures`` a failed US look leaves the US rows out (logged) and is added
    there: the domestic rows are not held up by it."""
    listed: Listing = {}
    for market in sorted({r.market for r in rows}):
        # US: the account's US orders (KIS files them under the New York date: executions(day) covers a KST day)
        broker = account.broker_for(market)
        try:
            for day in sorted({r.created_at.astimezone(KST).date() for r in rows if r.market == market}):
                for listed_row in await broker.executions(day):
                    filed = listed_row.date if market != "US" else dt.date.min
                    listed[(market, filed, order_no_key(listed_row.order_no))] = listed_row
        except KisError as exc:
            if market != "US" or us_failures is None:
                raise
            log.warning("US fill catch-up: KIS's US orders unavailable", extra={"error": type(exc).__name__})
            us_failures.append(exc)
    return listed


def _listed_row(listed: Listing, row: OrderJournalRow) -> Execution | None:
    key = order_no_key(row.kis_order_no or "")
    return listed.get((row.market, _filed_under(row), key)) or listed.get((row.market, dt.date.min, key))


def listed_price(execution: Execution, entry: OrderJournalRow, counted: int, counted_cost: Money | None) -> ListedPrice:
    """The price of the shares KIS's list shows filled (``execution``) beyond the ``counted`` ones of the journal
    row ``entry`` (costing ``counted_cost``), derived from KIS's filled amount or average (:func:`listed_fill_price`)."""
    currency = Currency(entry.currency)
    amount, limit = execution.filled_amount, execution.price
    return listed_fill_price(Money(execution.average_fill_price.amount, currency), execution.filled_quantity, counted,
                             counted_cost, amount=None if amount is None else Money(amount.amount, currency),
                             limit=None if limit is None else Money(limit.amount, currency), side=entry.side)


def listed_fills(execution: Execution, entry: OrderJournalRow, language: str, counted: int,
                 priced: ListedPrice) -> OrderFilled:
    """The push of the shares KIS's list shows filled beyond the ``counted`` ones, at ``priced``
    (:func:`listed_price`), with no time (the list's is the order's, ORD_TMD, not a fill's)."""
    return OrderFilled(language, execution.order_no, entry.code, execution.name or entry.code, entry.side,
                       execution.filled_quantity - counted, priced.units, "", currency=entry.currency,
                       price_basis=priced.basis)
