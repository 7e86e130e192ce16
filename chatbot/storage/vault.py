"""Keeping the encrypted columns and the master keyring in step.

* :func:`verify`: at start-up, every stored check value must open with its key version, else
  the bot refuses to start with one clear line (and has touched nothing).
* :func:`upgrade_plaintext`: rows written before encryption existed are encrypted in place.
* :func:`rotate`: a new key, every secret re-encrypted with it, then the old key retired.
"""

from __future__ import annotations

import logging

from sqlmodel import col, select

from chatbot.security.keyring import KeyringError, MasterKeyring
from chatbot.security.secretbox import DecryptionError, SecretBox
from chatbot.storage.db import Database
from chatbot.storage.tables import CredentialRow, KisTokenRow, MasterKeyCheckRow, PaperAccountRow

log = logging.getLogger(__name__)
CHECK_PLAINTEXT = "kis-chatops master key check"
_CHECK_OWNER = "vault"


async def verify(db: Database, box: SecretBox) -> None:
    async with db.session() as session:
        checks = list((await session.exec(select(MasterKeyCheckRow))).all())
        for check in checks:
            try:
                ok = box.decrypt(check.check_value, _CHECK_OWNER, f"check{check.version}") == CHECK_PLAINTEXT
            except (DecryptionError, KeyringError):
                ok = False
            if not ok:
                raise KeyringError(f"the master key does not open the data in {db.url.split('@')[-1]} "
                                   f"(key version {check.version}): set the right KISBOT_MASTER_KEY or key file; "
                                   f"nothing was changed")
        if not any(c.version == box.keyring.current for c in checks):
            session.add(_check_row(box, box.keyring.current))
            await session.commit()


def _check_row(box: SecretBox, version: int) -> MasterKeyCheckRow:
    return MasterKeyCheckRow(version=version, check_value=box.encrypt(CHECK_PLAINTEXT, _CHECK_OWNER,
                                                                      f"check{version}", version))


async def upgrade_plaintext(db: Database, box: SecretBox) -> int:
    """Encrypt paper keys and cached tokens stored before encryption existed."""
    count = 0
    version = box.keyring.current
    async with db.session() as session:
        for paper in (await session.exec(select(PaperAccountRow).where(col(PaperAccountRow.key_version).is_(None)))):
            paper.app_key = box.encrypt(paper.app_key, paper.telegram_id, "paper_app_key", version)
            paper.app_secret = box.encrypt(paper.app_secret, paper.telegram_id, "paper_app_secret", version)
            paper.key_version = version
            session.add(paper)
            count += 1
        for token in (await session.exec(select(KisTokenRow).where(col(KisTokenRow.key_version).is_(None)))):
            token.access_token = box.encrypt(token.access_token, token.key, "access_token", version)
            token.key_version = version
            session.add(token)
            count += 1
        await session.commit()
    if count:
        log.info("encrypted secrets stored before encryption", extra={"rows": count})
    return count


async def rotate(db: Database, keyring: MasterKeyring) -> int:
    """Re-encrypt every secret with a new master key; returns the number of values re-encrypted."""
    box = SecretBox(keyring)
    await verify(db, box)
    new_version = keyring.add_key()
    keyring.save()  # both keys on disk before any row changes: a crash here loses nothing
    count = 0
    async with db.session() as session:
        for cred in (await session.exec(select(CredentialRow))):
            for field in ("app_key", "app_secret"):
                value = box.decrypt(getattr(cred, field), cred.telegram_id, field)
                setattr(cred, field, box.encrypt(value, cred.telegram_id, field, new_version))
                count += 1
            cred.key_version = new_version
            session.add(cred)
        for paper in (await session.exec(select(PaperAccountRow))):
            for attr, field in (("app_key", "paper_app_key"), ("app_secret", "paper_app_secret")):
                stored = getattr(paper, attr)
                value = stored if paper.key_version is None else box.decrypt(stored, paper.telegram_id, field)
                setattr(paper, attr, box.encrypt(value, paper.telegram_id, field, new_version))
                count += 1
            paper.key_version = new_version
            session.add(paper)
        for token in (await session.exec(select(KisTokenRow))):
            value = token.access_token if token.key_version is None else box.decrypt(
                token.access_token, token.key, "access_token")
            token.access_token = box.encrypt(value, token.key, "access_token", new_version)
            token.key_version = new_version
            session.add(token)
            count += 1
        for check in (await session.exec(select(MasterKeyCheckRow))):
            await session.delete(check)
        session.add(_check_row(box, new_version))
        await session.commit()
    retired = keyring.retire_all_but_current()
    keyring.save()
    log.info("master key rotated", extra={"version": new_version, "retired": retired, "values": count})
    return count
