"""The push outbox: every push is a row written in the same transaction as the event that caused it,
and marked when the front end took it. A crash between the two sends it after the restart, once; a
user who blocked the bot is recorded and their pushes stop instead of being retried forever.

:func:`enqueue` is the one writer (the alert engine, the fill watcher, order reconciliation); the
:class:`OutboxSender` reads the rows back as notices (:mod:`chatbot.alerts.notices`) and hands them
to the front end's :class:`~chatbot.alerts.notices.Notifier`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import exists, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot.alerts.notices import Blocked, Delivered, Notice, NoticeFormatError, Notifier, RetryLater, decode
from chatbot.storage.db import Database
from chatbot.storage.tables import OutboxRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
BLOCKED = "blocked by the user"


class Push(NamedTuple):
    """A notice on its way to a chat: an outbox row to be. ``key`` names the event that caused it (one
    push per event, whatever writes it twice: a restart, a reconnect, a second look). A tuple: a
    storm makes thousands of them in a row."""

    key: str
    owner_id: int
    chat_id: int
    notice: Notice


def row_values(pushes: Sequence[Push], now: dt.datetime) -> list[dict[str, Any]]:
    """The outbox rows of pushes (every column: a bulk insert applies no model defaults)."""
    return [{"dedupe_key": key, "owner_id": owner_id, "chat_id": chat_id, "kind": notice.KIND, "status": "pending",
             "attempts": 0, "created_at": now, "payload": notice.payload()}
            for key, owner_id, chat_id, notice in pushes]


async def enqueue(transaction: AsyncSession | AsyncConnection, pushes: Sequence[Push], *,
                  keys_are_new: bool = False) -> int:
    """Write ``pushes`` inside the caller's transaction (one INSERT); a push whose key is already queued
    is left out, unless the caller knows every key is new (the alert engine: its keys carry the
    alert's fire count, moved by the same transaction). Returns how many were written."""
    if not pushes:
        return 0
    conn = await transaction.connection() if isinstance(transaction, AsyncSession) else transaction
    if not keys_are_new:
        queued = set((await conn.execute(select(OutboxRow.dedupe_key).where(
            col(OutboxRow.dedupe_key).in_([push.key for push in pushes])))).scalars())
        pushes = [push for push in pushes if push.key not in queued]
        if not pushes:
            return 0
    await conn.execute(insert(OutboxRow), row_values(pushes, utcnow()))
    return len(pushes)


class OutboxSender:
    """Delivers pending pushes, oldest first, through the front end's notifier.

    Built before anything that writes pushes (its :meth:`wake` is theirs from the start); it sends
    once :meth:`start` gives it the notifier."""

    def __init__(self, db: Database, poll_seconds: float = 1.0) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.notifier: Notifier | None = None
        self.on_blocked: Callable[[int], Awaitable[None]] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._retry_after: float | None = None  # seconds the platform asked to wait before the next push
        self.sent = 0
        self.claims = not db.is_sqlite  # replicas may send side by side: each row claimed (SQLite: one process)

    def wake(self) -> None:
        self._wake.set()

    async def start(self, notifier: Notifier, on_blocked: Callable[[int], Awaitable[None]]) -> None:
        """Deliver through ``notifier``; ``on_blocked(owner_id)`` when a user turns out to have blocked the bot."""
        self.notifier, self.on_blocked = notifier, on_blocked
        self._stopping = False
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-sender")
        self._wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Let the push in hand finish and be marked (so a restart neither repeats nor loses it)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self) -> int:
        """Send what is pending now (tests, shutdown); returns how many were sent."""
        return await self._send_batch()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                sent = await self._send_batch()
            except Exception:
                log.exception("outbox batch failed")
                sent = 0
            if self._retry_after is not None:
                pause, self._retry_after = self._retry_after, None
                await asyncio.sleep(pause)
                continue
            if not sent and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow a cancel
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()

    async def _send_batch(self, limit: int = 100) -> int:
        notifier, on_blocked = self.notifier, self.on_blocked
        if notifier is None or on_blocked is None:
            return 0
        if self.claims:
            return await self._send_claimed(notifier, on_blocked, limit)
        async with self.db.session() as session:
            rows = list((await session.exec(select(OutboxRow).where(col(OutboxRow.status) == "pending")
                                            .order_by(col(OutboxRow.id)).limit(limit))).all())
        sent = 0
        for row in rows:
            if self._stopping:
                break
            try:
                notice = decode(row.kind, row.payload)
            except NoticeFormatError as exc:  # never deliverable: no point retrying
                await self._mark(row, "dead", str(exc)[:200])
                log.warning("unreadable push dropped", extra={"outbox_id": row.id, "kind": row.kind})
                continue
            try:
                delivery = await notifier.deliver(row.chat_id, notice)
            except Exception as exc:  # noqa: BLE001 -- any delivery fault is recorded and retried, never kills the drain loop
                dead = row.attempts + 1 >= MAX_ATTEMPTS
                await self._mark(row, "dead" if dead else "pending", f"{type(exc).__name__}: {exc}"[:200])
                log.warning("push failed", extra={"outbox_id": row.id, "attempt": row.attempts + 1, "dead": dead})
                continue
            if isinstance(delivery, Blocked):
                await self._mark(row, "dead", BLOCKED)
                await on_blocked(row.owner_id)
                continue
            if isinstance(delivery, RetryLater):
                self._retry_after = max(delivery.seconds, 0.0)
                break
            assert isinstance(delivery, Delivered)
            await self._mark(row, "sent", None)
            sent += 1
            self.sent += 1
        return sent

    async def _send_claimed(self, notifier: Notifier, on_blocked: Callable[[int], Awaitable[None]],
                            limit: int) -> int:
        """PostgreSQL, where replicas send side by side: each push is claimed with ``FOR UPDATE SKIP
        LOCKED`` in a transaction of its own, held while it is delivered and marked, so two replicas
        never send one row (a replica that dies mid-push leaves it pending for another: sent again at
        most that once, as after a restart). Only the oldest pending push of each chat is taken, so a
        chat's pushes arrive in order whichever replicas send them."""
        sent = 0
        earlier = aliased(OutboxRow)
        head_of_chat = ~exists().where(col(earlier.chat_id) == col(OutboxRow.chat_id),
                                       col(earlier.status) == "pending", col(earlier.id) < col(OutboxRow.id))
        failed: list[int] = []  # tried again in the next batch, not in this one
        for _ in range(limit):
            if self._stopping:
                break
            blocked_owner: int | None = None
            async with self.db.write() as session:
                row = (await session.exec(select(OutboxRow).where(col(OutboxRow.status) == "pending", head_of_chat,
                                                                  col(OutboxRow.id).not_in(failed))
                                          .order_by(col(OutboxRow.id)).limit(1)
                                          .with_for_update(skip_locked=True))).first()
                if row is None:
                    break
                status, error = await self._deliver(notifier, row)
                if status is None:  # the platform asked to wait: the row stays pending, untouched
                    break
                await session.exec(update(OutboxRow).where(col(OutboxRow.id) == row.id).values(
                    status=status, attempts=OutboxRow.attempts + (0 if status == "sent" else 1), last_error=error,
                    sent_at=utcnow() if status == "sent" else None))
                if status == "sent":
                    sent += 1
                    self.sent += 1
                elif status == "pending" and row.id is not None:
                    failed.append(row.id)
                elif error == BLOCKED:
                    blocked_owner = row.owner_id
            if blocked_owner is not None:
                await on_blocked(blocked_owner)
        return sent

    async def _deliver(self, notifier: Notifier, row: OutboxRow) -> tuple[str | None, str | None]:
        """Deliver one row: its new (status, error), or (None, None) when the platform asked to wait."""
        try:
            notice = decode(row.kind, row.payload)
        except NoticeFormatError as exc:  # never deliverable: no point retrying
            log.warning("unreadable push dropped", extra={"outbox_id": row.id, "kind": row.kind})
            return "dead", str(exc)[:200]
        try:
            delivery = await notifier.deliver(row.chat_id, notice)
        except Exception as exc:  # noqa: BLE001 -- any delivery fault is recorded and retried
            dead = row.attempts + 1 >= MAX_ATTEMPTS
            log.warning("push failed", extra={"outbox_id": row.id, "attempt": row.attempts + 1, "dead": dead})
            return ("dead" if dead else "pending"), f"{type(exc).__name__}: {exc}"[:200]
        if isinstance(delivery, Blocked):
            return "dead", BLOCKED
        if isinstance(delivery, RetryLater):
            self._retry_after = max(delivery.seconds, 0.0)
            return None, None
        assert isinstance(delivery, Delivered)
        return "sent", None

    async def _mark(self, row: OutboxRow, status: str, error: str | None) -> None:
        async with self.db.write() as session:
            await session.exec(update(OutboxRow).where(col(OutboxRow.id) == row.id).values(
                status=status, attempts=OutboxRow.attempts + (0 if status == "sent" else 1), last_error=error,
                sent_at=utcnow() if status == "sent" else None))
