"""The push outbox: every push is a row written in the same transaction as the event that caused it,
and marked when Telegram took it. A crash between the two sends it after the restart, once; a
user who blocked the bot is recorded and their pushes stop instead of being retried forever."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot.storage.db import Database
from chatbot.storage.tables import OutboxRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6


class PushBlocked(Exception):
    """The user blocked the bot: stop pushing to them."""


class PushRetryLater(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds


Push = Callable[[OutboxRow], Awaitable[object]]


async def enqueue(session: AsyncSession, *, dedupe_key: str, owner_id: int, chat_id: int, kind: str,
                  payload: dict[str, Any]) -> bool:
    """Add a push inside the caller's transaction; False when this event was already queued."""
    existing = (await session.exec(select(OutboxRow.id).where(OutboxRow.dedupe_key == dedupe_key))).first()
    if existing is not None:
        return False
    session.add(OutboxRow(dedupe_key=dedupe_key, owner_id=owner_id, chat_id=chat_id, kind=kind, payload=payload))
    return True


class OutboxSender:
    def __init__(self, db: Database, push: Push, on_blocked: Callable[[int], Awaitable[None]],
                 poll_seconds: float = 1.0) -> None:
        self.db = db
        self.push = push
        self.on_blocked = on_blocked
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.sent = 0

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-sender")

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
            except PushRetryLater as exc:
                await asyncio.sleep(exc.seconds)
                continue
            except Exception:
                log.exception("outbox batch failed")
                sent = 0
            if not sent and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _send_batch(self, limit: int = 100) -> int:
        async with self.db.session() as session:
            rows = list((await session.exec(select(OutboxRow).where(col(OutboxRow.status) == "pending")
                                            .order_by(col(OutboxRow.id)).limit(limit))).all())
        sent = 0
        for row in rows:
            if self._stopping:
                break
            try:
                await self.push(row)
            except PushBlocked:
                await self._mark(row, "dead", "blocked by the user")
                await self.on_blocked(row.owner_id)
                continue
            except PushRetryLater:
                raise
            except Exception as exc:
                dead = row.attempts + 1 >= MAX_ATTEMPTS
                await self._mark(row, "dead" if dead else "pending", f"{type(exc).__name__}: {exc}"[:200])
                log.warning("push failed", extra={"outbox_id": row.id, "attempt": row.attempts + 1, "dead": dead})
                continue
            await self._mark(row, "sent", None)
            sent += 1
            self.sent += 1
        return sent

    async def _mark(self, row: OutboxRow, status: str, error: str | None) -> None:
        async with self.db.write() as session:
            await session.exec(update(OutboxRow).where(col(OutboxRow.id) == row.id).values(  # type: ignore[call-overload]
                status=status, attempts=OutboxRow.attempts + (0 if status == "sent" else 1), last_error=error,
                sent_at=utcnow() if status == "sent" else None))
