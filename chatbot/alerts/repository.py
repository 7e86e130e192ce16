"""Price alerts as rows: what a user's commands do to them (add, count, list, delete, pause and resume).

The alert engine (:mod:`chatbot.alerts.engine`) owns the other moves, the ones the market makes:
armed → fired or cooling when a trade crosses a threshold, cooling → armed when the cooldown is over.
"""

from __future__ import annotations

from sqlmodel import col, func, select

from chatbot.storage.db import Database
from chatbot.storage.tables import AlertRow
from chatbot.storage.types import utcnow

ACTIVE = ("armed", "cooling", "paused")  # the states a user still sees (and that count against their caps)


class AlertRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, row: AlertRow) -> AlertRow:
        """Store a new alert (its id set on ``row``)."""
        row.created_at = row.updated_at = utcnow()
        async with self.db.write() as session:
            session.add(row)
        return row

    async def count_active(self, owner_id: int) -> int:
        async with self.db.session() as session:
            return (await session.exec(select(func.count()).select_from(AlertRow).where(
                col(AlertRow.owner_id) == owner_id, col(AlertRow.status).in_(ACTIVE)))).one()

    async def active(self, owner_id: int) -> list[AlertRow]:
        """The user's alerts still in force, oldest first."""
        async with self.db.session() as session:
            return list((await session.exec(select(AlertRow).where(
                col(AlertRow.owner_id) == owner_id, col(AlertRow.status).in_(ACTIVE))
                .order_by(col(AlertRow.id)))).all())

    async def watched_symbols(self, owner_id: int) -> set[str]:
        """The distinct symbols of the user's active alerts."""
        async with self.db.session() as session:
            return set((await session.exec(select(AlertRow.code).where(
                col(AlertRow.owner_id) == owner_id, col(AlertRow.status).in_(ACTIVE)).distinct())).all())

    async def delete(self, owner_id: int, alert_id: int) -> AlertRow | None:
        """Mark the user's own active alert deleted; None when there is no such alert of theirs."""
        async with self.db.write() as session:
            row = await session.get(AlertRow, alert_id)
            if row is None or row.owner_id != owner_id or row.status not in ACTIVE:
                return None
            row.status, row.updated_at = "deleted", utcnow()
            session.add(row)
        return row

    async def pause_owner(self, owner_id: int) -> list[AlertRow]:
        """The user blocked the bot: their armed and cooling alerts become paused (not deleted)."""
        return await self._move_owner(owner_id, ("armed", "cooling"), "paused")

    async def resume_owner(self, owner_id: int) -> list[AlertRow]:
        """The user is back: their paused alerts are armed again."""
        return await self._move_owner(owner_id, ("paused",), "armed")

    async def _move_owner(self, owner_id: int, from_statuses: tuple[str, ...], to: str) -> list[AlertRow]:
        async with self.db.write() as session:
            rows = list((await session.exec(select(AlertRow).where(
                col(AlertRow.owner_id) == owner_id, col(AlertRow.status).in_(from_statuses)))).all())
            for row in rows:
                row.status, row.updated_at = to, utcnow()
                session.add(row)
        return rows
