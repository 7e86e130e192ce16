"""The KIS token cache in the database, encrypted (implements ``chatbot.kis.token.TokenStore``).

A save is one upsert and a delete one statement: each is a write transaction of a single round
trip, so the database's write lock is held for as short as it can be (a token fault makes every
user's client invalidate and re-issue at once)."""

from __future__ import annotations

from sqlalchemy import Table, delete

from chatbot.logs import SECRETS
from chatbot.security.credentials import CachedToken
from chatbot.security.secretbox import SecretBox
from chatbot.storage.db import Database
from chatbot.storage.tables import KisTokenRow
from chatbot.storage.types import utcnow

FIELD = "access_token"


class DbTokenStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box
        self.table: Table = KisTokenRow.__table__  # type: ignore[attr-defined]
        # key -> the token registered with the log redactor for it: forgotten there when KIS has declared it
        # expired (delete), else when its expiry passes (a token is issued again daily, and after every
        # invalidation: kept for good, the redactor grew by one per user per day and per invalidation)
        self._registered: dict[str, str] = {}

    async def load(self, key: str) -> CachedToken | None:
        async with self.db.session() as session:
            row = await session.get(KisTokenRow, key)
        if row is None or row.key_version is None:
            return None
        token = self.box.decrypt(row.access_token, key, FIELD)
        self._register(key, token, row.expires_at)
        return CachedToken(token, row.expires_at, row.issued_at)

    async def save(self, key: str, token: CachedToken) -> None:
        self._register(key, token.access_token, token.expires_at)
        version = self.box.keyring.current
        values = {"key": key, "access_token": self.box.encrypt(token.access_token, key, FIELD, version),
                  "key_version": version, "expires_at": token.expires_at, "issued_at": token.issued_at,
                  "updated_at": utcnow()}
        insert = self.db.upsert_insert()
        stmt = insert(self.table).values(values)
        stmt = stmt.on_conflict_do_update(index_elements=[self.table.c.key],
                                          set_={c: stmt.excluded[c] for c in values if c != "key"})
        async with self.db.write_connection() as conn:
            await conn.execute(stmt)

    async def delete(self, key: str) -> None:
        """KIS declared the key's token expired (TokenManager.invalidate): it is dead, no secret any more."""
        async with self.db.write_connection() as conn:
            await conn.execute(delete(self.table).where(self.table.c.key == key))
        token = self._registered.pop(key, None)
        if token is not None:
            SECRETS.discard(token)

    def _register(self, key: str, token: str, expires_at: float) -> None:
        SECRETS.add(token, until=expires_at)  # an expired token is no secret: forgotten then
        self._registered[key] = token
