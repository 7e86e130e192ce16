"""The KIS token cache in the database (implements ``chatbot.kis.token.TokenStore``)."""

from __future__ import annotations

from chatbot.kis.token import CachedToken
from chatbot.storage.db import Database
from chatbot.storage.tables import KisTokenRow
from chatbot.storage.types import utcnow


class DbTokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, key: str) -> CachedToken | None:
        async with self.db.session() as session:
            row = await session.get(KisTokenRow, key)
            if row is None:
                return None
            return CachedToken(row.access_token, row.expires_at, row.issued_at)

    async def save(self, key: str, token: CachedToken) -> None:
        async with self.db.session() as session:
            row = await session.get(KisTokenRow, key)
            if row is None:
                row = KisTokenRow(key=key, access_token=token.access_token, expires_at=token.expires_at,
                                  issued_at=token.issued_at)
            else:
                row.access_token, row.expires_at, row.issued_at = token.access_token, token.expires_at, token.issued_at
                row.updated_at = utcnow()
            session.add(row)
            await session.commit()

    async def delete(self, key: str) -> None:
        async with self.db.session() as session:
            row = await session.get(KisTokenRow, key)
            if row is not None:
                await session.delete(row)
                await session.commit()
