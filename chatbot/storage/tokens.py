"""The KIS token cache in the database, encrypted (implements ``chatbot.kis.token.TokenStore``)."""

from __future__ import annotations

from chatbot.kis.token import CachedToken
from chatbot.logs import SECRETS
from chatbot.security.secretbox import SecretBox
from chatbot.storage.db import Database
from chatbot.storage.tables import KisTokenRow
from chatbot.storage.types import utcnow

FIELD = "access_token"


class DbTokenStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    async def load(self, key: str) -> CachedToken | None:
        async with self.db.session() as session:
            row = await session.get(KisTokenRow, key)
        if row is None or row.key_version is None:
            return None
        token = self.box.decrypt(row.access_token, key, FIELD)
        SECRETS.add(token)
        return CachedToken(token, row.expires_at, row.issued_at)

    async def save(self, key: str, token: CachedToken) -> None:
        SECRETS.add(token.access_token)
        version = self.box.keyring.current
        sealed = self.box.encrypt(token.access_token, key, FIELD, version)
        async with self.db.write() as session:
            row = await session.get(KisTokenRow, key)
            if row is None:
                row = KisTokenRow(key=key, access_token=sealed, key_version=version, expires_at=token.expires_at,
                                  issued_at=token.issued_at)
            else:
                row.access_token, row.key_version = sealed, version
                row.expires_at, row.issued_at, row.updated_at = token.expires_at, token.issued_at, utcnow()
            session.add(row)

    async def delete(self, key: str) -> None:
        async with self.db.write() as session:
            row = await session.get(KisTokenRow, key)
            if row is not None:
                await session.delete(row)
