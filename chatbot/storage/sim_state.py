"""The embedded simulator's state in the database (implements ``chatbot.sim.store.StateStore``)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from chatbot.storage.db import Database
from chatbot.storage.tables import SimDocumentRow
from chatbot.storage.types import utcnow


class DbSimStateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load_all(self) -> dict[str, dict[str, Any]]:
        async with self.db.session() as session:
            rows = (await session.exec(select(SimDocumentRow))).all()
            return {row.key: row.data for row in rows}

    async def save_many(self, documents: dict[str, dict[str, Any]]) -> None:
        async with self.db.session() as session:
            for key, data in documents.items():
                row = await session.get(SimDocumentRow, key)
                if row is None:
                    row = SimDocumentRow(key=key, data=data)
                else:
                    row.data = data
                    row.updated_at = utcnow()
                session.add(row)
            await session.commit()
