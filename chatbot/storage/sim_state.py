"""The embedded simulator's state in the database (implements ``chatbot.sim.store.StateStore``).

One row per document (a paper account, an app key's tokens, the market). A save is one upsert of
the documents that changed; a load reads two columns of every row, without ORM objects (at
10,000 users that is 20,000 documents, read once at start-up), the documents as their JSON text,
decoded by one ``json.loads`` of them all rather than one call per row through the column type."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Table, Text, cast, select

from chatbot.storage.db import Database
from chatbot.storage.tables import SimDocumentRow
from chatbot.storage.types import utcnow

SAVE_CHUNK = 500  # rows per statement (three parameters each; SQLite allows 32,766)


class DbSimStateStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.table: Table = SimDocumentRow.__table__  # type: ignore[attr-defined]

    async def load_all(self) -> dict[str, dict[str, Any]]:
        # As text (CAST: PostgreSQL's driver would decode json itself), joined into one JSON array.
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(self.table.c.key, cast(self.table.c.data, Text)))).all()
        documents: list[dict[str, Any]] = json.loads("[" + ",".join([text for _, text in rows]) + "]")
        return dict(zip([key for key, _ in rows], documents, strict=True))

    async def save_many(self, documents: dict[str, dict[str, Any]]) -> None:
        if not documents:
            return
        now = utcnow()
        rows = [{"key": key, "data": data, "updated_at": now} for key, data in documents.items()]
        insert = self.db.upsert_insert()
        async with self.db.write_connection() as conn:  # simulator state, one transaction per save
            for i in range(0, len(rows), SAVE_CHUNK):
                stmt = insert(self.table).values(rows[i:i + SAVE_CHUNK])
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=[self.table.c.key],
                    set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}))
