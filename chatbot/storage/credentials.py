"""Users' KIS credentials and simulator paper keys, encrypted with the master key."""

from __future__ import annotations

import secrets

from sqlmodel import col, select

from chatbot.logs import SECRETS
from chatbot.security.credentials import Account, KisCredentials, mask
from chatbot.security.secretbox import SecretBox
from chatbot.storage.db import Database
from chatbot.storage.tables import CredentialRow, PaperAccountRow
from chatbot.storage.types import utcnow


class CredentialStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    async def save(self, telegram_id: int, environment: str, credentials: KisCredentials,
                   hts_id: str | None = None) -> None:
        version = self.box.keyring.current
        sealed_key = self.box.encrypt(credentials.app_key, telegram_id, "app_key", version)
        sealed_secret = self.box.encrypt(credentials.app_secret, telegram_id, "app_secret", version)
        async with self.db.write() as session:
            row = await session.get(CredentialRow, telegram_id)
            if row is None:
                row = CredentialRow(telegram_id=telegram_id, environment=environment, account="", app_key="",
                                    app_secret="", key_hint="", key_version=version)
            row.environment = environment
            row.account = str(credentials.account)
            row.app_key, row.app_secret = sealed_key, sealed_secret
            row.key_hint = mask(credentials.app_key)
            row.key_version = version
            row.hts_id = hts_id
            row.updated_at = utcnow()
            session.add(row)

    async def load(self, telegram_id: int) -> KisCredentials | None:
        async with self.db.session() as session:
            row = await session.get(CredentialRow, telegram_id)
        if row is None:
            return None
        app_key = self.box.decrypt(row.app_key, telegram_id, "app_key")
        app_secret = self.box.decrypt(row.app_secret, telegram_id, "app_secret")
        SECRETS.add(app_key, app_secret)
        return KisCredentials(app_key, app_secret, Account.parse(row.account))

    async def info(self, telegram_id: int) -> CredentialRow | None:
        """The row without decrypting anything (for /me: environment, masked key, account)."""
        async with self.db.session() as session:
            return await session.get(CredentialRow, telegram_id)

    async def others_with_key(self, telegram_id: int, app_key: str) -> list[int]:
        """The other users whose stored credentials are on ``app_key`` (KIS gives one token per app key:
        theirs is this user's too). Only rows with the same masked hint are decrypted."""
        async with self.db.session() as session:
            rows = (await session.exec(select(CredentialRow).where(
                CredentialRow.key_hint == mask(app_key), col(CredentialRow.telegram_id) != telegram_id))).all()
        return [row.telegram_id for row in rows
                if secrets.compare_digest(self.box.decrypt(row.app_key, row.telegram_id, "app_key"), app_key)]

    async def delete(self, telegram_id: int) -> bool:
        async with self.db.write() as session:
            row = await session.get(CredentialRow, telegram_id)
            if row is None:
                return False
            await session.delete(row)
            return True


class PaperAccountStore:
    """The simulator key pair and account the bot opens for a user in simulator mode."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    async def get_or_create(self, telegram_id: int) -> KisCredentials:
        async with self.db.session() as session:
            row = await session.get(PaperAccountRow, telegram_id)
        if row is None:
            new = self._new_row(telegram_id)  # encrypted before the write lock is taken
            async with self.db.write() as session:
                row = await session.get(PaperAccountRow, telegram_id)  # another update may have made it
                if row is None:
                    row = new
                    session.add(row)
        return self._open(row)

    async def renew(self, telegram_id: int) -> KisCredentials:
        """A brand-new paper account (new keys, new number, starting cash) in place of the old one."""
        row = self._new_row(telegram_id)
        async with self.db.write() as session:
            old = await session.get(PaperAccountRow, telegram_id)
            if old is not None:
                await session.delete(old)
                await session.flush()
            session.add(row)
        return self._open(row)

    def _new_row(self, telegram_id: int) -> PaperAccountRow:
        version = self.box.keyring.current
        return PaperAccountRow(
            telegram_id=telegram_id, account=f"{secrets.randbelow(10**8):08d}-01", key_version=version,
            app_key=self.box.encrypt("PS" + secrets.token_hex(17), telegram_id, "paper_app_key", version),
            app_secret=self.box.encrypt(secrets.token_urlsafe(135), telegram_id, "paper_app_secret", version))

    def _open(self, row: PaperAccountRow) -> KisCredentials:
        app_key = self.box.decrypt(row.app_key, row.telegram_id, "paper_app_key")
        app_secret = self.box.decrypt(row.app_secret, row.telegram_id, "paper_app_secret")
        SECRETS.add(app_key, app_secret)
        return KisCredentials(app_key, app_secret, Account.parse(row.account))
