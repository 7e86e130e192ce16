"""The order journal: every order attempt that left the bot, with each status it went through.

A row is written in the same transaction as the claim of its card (``submitting``), then, before the
request leaves, with the snapshot of the day's orders and the time of sending (:meth:`mark_sending`):
whatever happens next — a kill -9, a lost reply — the bot knows what it may have sent and what to
look for (:mod:`chatbot.service.reconciliation`). An outcome is written with the card's in one
transaction (:meth:`settle`); when the database refuses it, :class:`UnwrittenOutcomes` keeps it in
memory and writes it as soon as the database takes writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import insert, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot import tasks
from chatbot.storage.db import Database
from chatbot.storage.tables import OrderEventRow, OrderJournalRow, PendingOrderRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)
UNRESOLVED = ("submitting", "uncertain")  # the outcome is not known (yet): reconciliation looks for it
FILL_STATUSES = ("filled", "partially_filled")
# Where a fill event's quantity came from (order_events.source): one execution notice's own quantity, or what a
# cumulative reading of KIS's list of the day's orders (catch-up, reconciliation) added to reach its figure.
NOTICE, LISTED = "notice", "listed"
OPEN_STATUSES = ("accepted", "partially_filled")  # placed and still working: fills may come
# What a database that refuses writes raises (OperationalError for a lock, a full disk, a lost server).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)
AlsoInTransaction = Callable[[AsyncSession], Awaitable[None]]


class SendingTaken(Exception):
    """A journal row is no longer the caller's to send (another process took it over, or it was told):
    nothing was sent, and this process must not send it."""


class DatabaseUnavailable(Exception):
    """A write kept failing for the whole retry budget."""


async def retry_write(write: Callable[[], Awaitable[None]], budget: float, what: str) -> None:
    """Run ``write`` until it succeeds, backing off (50 ms doubling to 1 s) for up to ``budget``
    seconds; then raise :class:`DatabaseUnavailable`. Only database errors are retried."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    pause = 0.05
    while True:
        try:
            await write()
            return
        except DATABASE_ERRORS as exc:
            if loop.time() + pause > deadline:
                log.error("database write failed; giving up for now", extra={"what": what,
                                                                             "error": type(exc).__name__})
                raise DatabaseUnavailable(what) from exc
            log.warning("database write failed; retrying", extra={"what": what, "error": type(exc).__name__,
                                                                    "pause_s": pause})
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


class OrderJournal:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, session: AsyncSession, card: PendingOrderRow, submitted_by: str) -> int:
        """Open the row of a card being claimed, inside the claim's transaction."""
        row = OrderJournalRow(idempotency_key=card.id, owner_id=card.owner_id, environment=card.environment,
                              account="", action=card.action, side=card.side, code=card.code,
                              quantity=card.quantity, price=card.price, currency=card.currency,
                              original_order_no=card.order_no,
                              status="submitting", submitted_by=submitted_by, market=card.market,
                              exchange=card.exchange, order_type=card.order_type)
        session.add(row)
        await session.flush()
        assert row.id is not None
        session.add(OrderEventRow(journal_id=row.id, status="submitting"))
        return row.id

    async def add_many(self, conn: AsyncConnection, cards: list[PendingOrderRow], submitted_by: str) -> dict[str, int]:
        """:meth:`add` for many cards at once, in the caller's Core transaction (one INSERT each for the
        rows and their first events); journal id by idempotency key."""
        if not cards:
            return {}
        now = utcnow()
        rows = [{"idempotency_key": card.id, "owner_id": card.owner_id, "environment": card.environment,
                 "account": "", "action": card.action, "side": card.side, "code": card.code,
                 "quantity": card.quantity, "price": card.price, "original_order_no": card.order_no,
                 "kis_order_no": None, "status": "submitting", "msg_cd": None, "message": None,
                 "known_orders": None, "sent_at": None, "submitted_by": submitted_by, "absent_looks": 0,
                 "checked_at": None, "told_at": None, "created_at": now, "updated_at": now,
                 "currency": card.currency, "market": card.market, "exchange": card.exchange,
                 "order_type": card.order_type} for card in cards]
        returned = (await conn.execute(insert(OrderJournalRow).returning(
            OrderJournalRow.__table__.c.id, OrderJournalRow.__table__.c.idempotency_key,  # type: ignore[attr-defined]
            sort_by_parameter_order=True), rows)).all()
        ids: dict[str, int] = {str(key): int(journal_id) for journal_id, key in returned}
        await conn.execute(insert(OrderEventRow), [{"journal_id": journal_id, "status": "submitting", "detail": None,
                                                    "at": now} for journal_id in ids.values()])
        return ids

    async def mark_sending(self, journal_id: int, account: str, known_orders: set[str], *,
                           by: str | None = None) -> None:
        """Committed before the request leaves: the account, the snapshot, the time of sending. With ``by``
        (the sending process), only while the row is still ``by``'s and untold, in one conditional UPDATE:
        a firing another process took over (it sends it) or already told raises :class:`SendingTaken`, and
        nothing may be sent."""
        where = [col(OrderJournalRow.id) == journal_id]
        if by is not None:
            where += [col(OrderJournalRow.submitted_by) == by, col(OrderJournalRow.told_at).is_(None)]
        now = utcnow()
        async with self.db.write() as session:
            result = await session.exec(update(OrderJournalRow).where(*where).values(
                account=account, known_orders=sorted(known_orders), sent_at=now, updated_at=now))
        if result.rowcount != 1:
            if by is not None:
                raise SendingTaken(f"journal row {journal_id} is no longer {by}'s to send")
            raise LookupError(f"journal row {journal_id} is gone")

    async def settle(self, journal_id: int, status: str, *, kis_order_no: str | None = None,
                     msg_cd: str | None = None, message: str | None = None, told: bool = True,
                     also: AlsoInTransaction | None = None, by: str | None = None) -> bool:
        """Write an outcome (and, with ``also``, the card's) in one transaction. With ``by`` (the sending
        process), only while the row is still ``by``'s: False, and nothing written, when another process took
        it over (it sends and settles it; see :meth:`mark_sending`)."""
        async with self.db.write() as session:
            row = await session.get(OrderJournalRow, journal_id, with_for_update=by is not None)
            if by is not None and (row is None or row.submitted_by != by):
                return False
            if row is not None:
                now = utcnow()
                row.status = status
                row.kis_order_no = kis_order_no or row.kis_order_no
                row.msg_cd = msg_cd or row.msg_cd
                row.message = message or row.message
                row.updated_at = now
                if told:
                    row.told_at = row.told_at or now
                else:
                    row.checked_at = now  # the submitter's own looks just happened
                session.add(row)
                session.add(OrderEventRow(journal_id=journal_id, status=status, detail=message))
            if also is not None:
                await also(session)
        return True

    async def record(self, journal_id: int, status: str, *, kis_order_no: str | None = None,
                     msg_cd: str | None = None, message: str | None = None) -> None:
        await self.settle(journal_id, status, kis_order_no=kis_order_no, msg_cd=msg_cd, message=message)

    async def by_key(self, idempotency_key: str) -> OrderJournalRow | None:
        async with self.db.session() as session:
            rows = await session.exec(select(OrderJournalRow).where(OrderJournalRow.idempotency_key == idempotency_key))
            return rows.first()

    async def unresolved(self) -> list[OrderJournalRow]:
        """Rows whose outcome nobody has told yet, oldest sending first."""
        async with self.db.session() as session:
            rows = await session.exec(select(OrderJournalRow).where(
                col(OrderJournalRow.status).in_(UNRESOLVED), col(OrderJournalRow.told_at).is_(None))
                .order_by(col(OrderJournalRow.id)))
            return list(rows.all())


async def last_fill(session: AsyncSession, journal_id: int, source: str) -> dt.datetime | None:
    """When the journal last counted a fill of the order from ``source``: :data:`LISTED`, a cumulative reading of
    KIS's list (taken before then; a fill notice of a moment up to then may be inside its figure), or
    :data:`NOTICE`, an execution notice (events older than revision 0018, without a source, are notices')."""
    is_source = col(OrderEventRow.source) == source
    if source == NOTICE:
        is_source = is_source | col(OrderEventRow.source).is_(None)
    return (await session.exec(select(OrderEventRow.at).where(
        col(OrderEventRow.journal_id) == journal_id, col(OrderEventRow.status).in_(FILL_STATUSES), is_source)
        .order_by(col(OrderEventRow.at).desc()).limit(1))).first()


async def claimed_order_nos(session: AsyncSession, account: str, listed: Mapping[str, dt.date | None],
                            tz: dt.tzinfo, *, slack_days: int = 0) -> set[str]:
    """Which of the ``listed`` order numbers (each with the day KIS lists it under, in ``tz``) the journal
    already gives to an order of ``account`` sent that day (or within ``slack_days`` of it). KIS numbers orders
    anew each day: a number an order of another day had says nothing. A number listed without a day is claimed
    by a row of any day."""
    if not listed:
        return set()
    rows = await session.exec(select(OrderJournalRow.kis_order_no, OrderJournalRow.sent_at,
                                     OrderJournalRow.created_at).where(
        col(OrderJournalRow.account) == account, col(OrderJournalRow.kis_order_no).in_(list(listed))))
    claimed: set[str] = set()
    for order_no, sent_at, created_at in rows.all():
        day = listed.get(order_no or "")
        if order_no and (day is None or abs(((sent_at or created_at).astimezone(tz).date() - day).days) <= slack_days):
            claimed.add(order_no)
    return claimed


class UnwrittenOutcomes:
    """Outcomes the user was told (from memory) but the database did not take: written again and
    again, backing off (up to 30 s), until it does. ``journal_ids``/``order_nos`` say which are
    waiting, so reconciliation leaves them alone and a fill notice waits for its order's row."""

    def __init__(self, max_pause: float = 30.0) -> None:
        self.max_pause = max_pause
        self._writes: dict[int, tuple[str | None, Callable[[], Awaitable[None]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.written_late = 0

    def add(self, journal_id: int, order_no: str | None, write: Callable[[], Awaitable[None]]) -> None:
        self._writes[journal_id] = (order_no, write)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="unwritten-outcomes")
            self._task.add_done_callback(_log_crash)

    @property
    def journal_ids(self) -> set[int]:
        return set(self._writes)

    @property
    def order_nos(self) -> set[str]:
        return {order_no for order_no, _ in self._writes.values() if order_no}

    async def _run(self) -> None:
        pause = 0.25
        while self._writes:
            refused = False
            for journal_id, (_, write) in list(self._writes.items()):
                try:
                    await write()
                except DATABASE_ERRORS as exc:
                    log.warning("outcome still not written; the database refuses writes",
                                extra={"journal_id": journal_id, "error": type(exc).__name__, "pause_s": pause})
                    refused = True
                    break
                except Exception:
                    log.exception("outcome could not be written; dropped", extra={"journal_id": journal_id})
                else:
                    self.written_late += 1
                    log.info("outcome written after the database came back", extra={"journal_id": journal_id})
                self._writes.pop(journal_id, None)
            if not refused:
                pause = 0.25
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow the stop's cancel
                async with asyncio.timeout(pause):
                    await self._wake.wait()
            pause = min(pause * 2, self.max_pause)

    async def stop(self) -> None:
        """One last try for what is waiting; what still fails is logged (reconciliation finds it)."""
        task, self._task = self._task, None
        await tasks.cancel(task)
        for journal_id, (_, write) in list(self._writes.items()):
            try:
                await write()
                self._writes.pop(journal_id, None)
            except Exception:  # noqa: BLE001 -- shutdown must finish; reconciliation recovers the outcome
                log.error("outcome not written at shutdown; reconciliation at the next start will find it",
                          extra={"journal_id": journal_id})


class Settling:
    """Journal rows this process is settling: claimed and not yet settled (in flight), or told but
    not yet written (:attr:`unwritten`). Shared by the orders service, which settles them, and
    reconciliation, which leaves them alone."""

    def __init__(self) -> None:
        self.in_flight: set[int] = set()
        self.unwritten = UnwrittenOutcomes()

    def journal_ids(self) -> set[int]:
        return self.in_flight | self.unwritten.journal_ids


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception(), extra={"task": task.get_name()})
