"""Price alerts as rows: what a user's commands do to them (add, count, list, delete, pause and resume).

The alert engine (:mod:`chatbot.alerts.engine`) owns the other moves, the ones the market makes:
armed → fired or cooling when a trade crosses a threshold, cooling → armed when the cooldown is over.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, cast
from sqlalchemy import select as core_select
from sqlmodel import col, func, select

from chatbot.storage.db import Database
from chatbot.storage.tables import AlertRow
from chatbot.storage.types import utcnow

ACTIVE = ("armed", "cooling", "paused")  # the states a user still sees (and that count against their caps)
Side = tuple[str, str, list[int], list[int]]  # (code, direction, alert ids, thresholds in price units), in step


async def armed_sides(db: Database, threshold_units: Any) -> tuple[list[Side], set[str]]:
    """Start-up: every armed alert as one entry per (symbol, direction), for
    :meth:`chatbot.alerts.book.AlertBook.load_sides`; and the symbols of the cooling ones (they stay
    subscribed). ``threshold_units`` is the column expression giving a threshold in its currency's price
    units (the engine's ``THRESHOLD_UNITS``).

    The database groups the rows and hands each group back as one string of ``id,threshold`` pairs
    (``group_concat`` / ``string_agg``): 100,000 alerts come back as a few dozen rows, parsed with
    ``str.split`` and ``int`` in C, where reading them row by row made 400,000 Python values, a
    SQLAlchemy row each and a loop over them (most of the start-up of a large book)."""
    pair = cast(col(AlertRow.id), String) + "," + cast(threshold_units, String)
    joined = func.group_concat(pair, ",") if db.is_sqlite else func.string_agg(pair, ",")
    armed = (core_select(col(AlertRow.code), col(AlertRow.direction), joined)
             .where(col(AlertRow.status) == "armed").group_by(col(AlertRow.code), col(AlertRow.direction)))
    cooling = core_select(col(AlertRow.code)).distinct().where(col(AlertRow.status) == "cooling")
    async with db.engine.connect() as conn:
        groups = (await conn.execute(armed)).all()
        cooling_codes = set((await conn.execute(cooling)).scalars())
    sides: list[Side] = []
    for code, direction, text in groups:
        numbers = list(map(int, text.split(",")))
        sides.append((code, direction, numbers[0::2], numbers[1::2]))
    return sides, cooling_codes | {side[0] for side in sides}


async def armed_since(db: Database, since: dt.datetime) -> list[tuple[int, str, dt.datetime]]:
    """Start-up: the armed alerts (re-)armed at or after ``since`` (id, symbol, when): a gap assumed from
    before then (the feed's last stamp, chatbot.service.watermark) must not judge them by extremes made
    before they were armed. When is ``updated_at``, not ``created_at``: a repeat alert re-armed after its
    cooldown, or one resumed from pause, is armed from then (an extreme made during the cooldown or the pause
    must not push it). An armed row's ``updated_at`` is written only by its storing, re-arming and resuming
    (a fire moves it out of "armed"); anything else writing it would only make it judged as armed later:
    set aside from more extremes, never pushed on one made before its arming (the safe side)."""
    query = (core_select(col(AlertRow.id), col(AlertRow.code), col(AlertRow.updated_at))
             .where(col(AlertRow.status) == "armed", col(AlertRow.updated_at) >= since))
    async with db.engine.connect() as conn:
        return [(int(i or 0), str(code), armed) for i, code, armed in (await conn.execute(query)).all()]


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
