"""Keeping the encrypted columns and the master keyring in step.

* :func:`open_keyring`: the keyring from ``KISBOT_MASTER_KEY`` or the key file; a missing key file is
  created only when the database holds nothing encrypted (a new key would orphan every secret).
* :func:`verify`: at start-up, every stored check value must open with its key version, and every
  secret must be under a key version the keyring holds (one of each version is opened to be sure),
  else the bot refuses to start with one clear line (and has touched nothing).
* :func:`upgrade_plaintext`: rows written before encryption existed are encrypted in place.
* :func:`rotate`: a new key, every secret re-encrypted with it, then the old key retired; refused
  while a bot holds the database (``chatbot.storage.leases``), since a running bot keeps encrypting
  with the key it started with.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import delete
from sqlmodel import col, func, select

from chatbot.security.keyring import ENV_VAR, KeyFileMissing, KeyringError, MasterKeyring
from chatbot.security.secretbox import DecryptionError, SecretBox
from chatbot.storage.db import Database
from chatbot.storage.leases import MAINTENANCE, Lease, LeaseHeld
from chatbot.storage.tables import CredentialRow, KisTokenRow, MasterKeyCheckRow, PaperAccountRow

log = logging.getLogger(__name__)
CHECK_PLAINTEXT = "kis-chatops master key check"
_CHECK_OWNER = "vault"


class RotationRefused(KeyringError):
    """rotate-key would run beside a bot (or another rotation); nothing was changed."""


async def encrypted_counts(db: Database) -> dict[int, int]:
    """How many encrypted secrets the database holds, by master key version."""
    counts: dict[int, int] = {}
    async with db.session() as session:
        for version_col in (col(CredentialRow.key_version), col(PaperAccountRow.key_version),
                            col(KisTokenRow.key_version)):
            rows = await session.exec(select(version_col, func.count()).where(version_col.is_not(None))
                                      .group_by(version_col))
            for version, count in rows.all():
                if version is not None:
                    counts[version] = counts.get(version, 0) + count
    return counts


async def open_keyring(db: Database, key_file: str | Path) -> MasterKeyring:
    """The master keyring; a new key file only for a database that holds no encrypted secret."""
    try:
        return MasterKeyring.load(key_file, create=False)
    except KeyFileMissing:
        pass
    held = sum((await encrypted_counts(db)).values())
    if held:
        raise KeyringError(f"master key file {key_file} does not exist, but the database holds {_secrets(held)} "
                           f"encrypted with a master key: restore the key file (or set {ENV_VAR}); no new key "
                           f"was created, since it would make them unreadable; nothing was changed")
    async with db.write() as session:  # check values of a key that encrypted nothing: obsolete
        stale = await session.exec(delete(MasterKeyCheckRow))
    ring = MasterKeyring.create(Path(key_file))
    log.warning("created a new master key file (the database held no encrypted secret)",
                extra={"path": str(key_file), "obsolete_checks": stale.rowcount})
    return ring


async def verify(db: Database, box: SecretBox) -> None:
    where = str(box.keyring.path) if box.keyring.path is not None else ENV_VAR
    missing = {v: n for v, n in (await encrypted_counts(db)).items() if v not in box.keyring.keys}
    if missing:
        versions = ", ".join(str(v) for v in sorted(missing))
        count = sum(missing.values())
        raise KeyringError(f"{_secrets(count)} in the database {'is' if count == 1 else 'are'} encrypted with master key "
                           f"version {versions}, which the keyring ({where}) does not hold: restore the key "
                           f"file that has it (or {ENV_VAR}); nothing was changed")
    async with db.session() as session:
        checks = list((await session.exec(select(MasterKeyCheckRow))).all())
    for check in checks:
        try:
            ok = box.decrypt(check.check_value, _CHECK_OWNER, f"check{check.version}") == CHECK_PLAINTEXT
        except (DecryptionError, KeyringError):
            ok = False
        if not ok:
            raise _wrong_key(db, where, check.version)
    await _open_one_of_each_version(db, box, where)
    if not any(c.version == box.keyring.current for c in checks):
        row = _check_row(box, box.keyring.current)
        async with db.write() as session:
            if await session.get(MasterKeyCheckRow, row.version) is None:  # another process's start-up
                session.add(row)


async def _open_one_of_each_version(db: Database, box: SecretBox, where: str) -> None:
    """Open one secret per key version per table: a key file holding the right version numbers but
    other keys is found here, before anything is written."""
    async with db.session() as session:
        samples: list[tuple[str, int | str, str]] = []
        for version in box.keyring.keys:
            cred = (await session.exec(select(CredentialRow).where(col(CredentialRow.key_version) == version)
                                       .limit(1))).first()
            if cred is not None:
                samples.append((cred.app_secret, cred.telegram_id, "app_secret"))
            paper = (await session.exec(select(PaperAccountRow).where(col(PaperAccountRow.key_version) == version)
                                        .limit(1))).first()
            if paper is not None:
                samples.append((paper.app_secret, paper.telegram_id, "paper_app_secret"))
            token = (await session.exec(select(KisTokenRow).where(col(KisTokenRow.key_version) == version)
                                        .limit(1))).first()
            if token is not None:
                samples.append((token.access_token, token.key, "access_token"))
    for stored, owner, field in samples:
        try:
            box.decrypt(stored, owner, field)
        except KeyringError:
            raise _wrong_key(db, where, SecretBox.version_of(stored)) from None


def _secrets(count: int) -> str:
    return f"{count} secret{'' if count == 1 else 's'}"


def _wrong_key(db: Database, where: str, version: int | None) -> KeyringError:
    return KeyringError(f"the master key does not open the data in {db.url.split('@')[-1]} (key version {version}, "
                        f"from {where}): set the right {ENV_VAR} or key file; nothing was changed")


def _check_row(box: SecretBox, version: int) -> MasterKeyCheckRow:
    return MasterKeyCheckRow(version=version, check_value=box.encrypt(CHECK_PLAINTEXT, _CHECK_OWNER,
                                                                      f"check{version}", version))


async def upgrade_plaintext(db: Database, box: SecretBox) -> int:
    """Encrypt paper keys and cached tokens stored before encryption existed."""
    count = 0
    version = box.keyring.current
    async with db.write() as session:  # read-then-write: one transaction holding the write lock
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
    if count:
        log.info("encrypted secrets stored before encryption", extra={"rows": count})
    return count


async def rotate(db: Database, keyring: MasterKeyring) -> int:
    """Re-encrypt every secret with a new master key; returns the number of values re-encrypted.

    Refused (:class:`RotationRefused`, nothing changed) while a bot holds the database."""
    lease = Lease(db, MAINTENANCE, "rotate-key")
    try:
        await lease.acquire()
    except LeaseHeld as exc:
        raise RotationRefused(f"rotate-key refused: {exc}. Stop it first: a running bot keeps encrypting with "
                              f"the key it started with, which rotation retires. Nothing was changed") from None
    try:
        return await _rotate(db, keyring)
    finally:
        await lease.release()


async def _rotate(db: Database, keyring: MasterKeyring) -> int:
    box = SecretBox(keyring)
    await verify(db, box)
    new_version = keyring.add_key()
    keyring.save()  # both keys on disk before any row changes: a crash here loses nothing
    count = 0
    async with db.write() as session:  # every secret re-encrypted in one transaction (no bot runs: the lease)
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
    retired = keyring.retire_all_but_current()
    keyring.save()
    log.info("master key rotated", extra={"version": new_version, "retired": retired, "values": count})
    return count
