"""The last good copy of each KIS master archive, as downloaded (the bot's directory after a restart)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel, select

from chatbot.storage.db import Database
from chatbot.storage.types import UTCDateTime, utcnow


class MasterFileRow(SQLModel, table=True):
    """One master archive (``kospi_code.mst.zip`` …) exactly as KIS served it, once it parsed."""

    __tablename__ = "master_files"

    name: str = Field(primary_key=True, max_length=40)
    archive: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64)
    records: int  # symbols parsed from it
    fetched_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


@dataclass(frozen=True, slots=True)
class StoredMaster:
    name: str
    archive: bytes
    records: int
    fetched_at: dt.datetime


class MasterFileStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self) -> dict[str, StoredMaster]:
        async with self.db.session() as session:
            rows = (await session.exec(select(MasterFileRow))).all()
            return {r.name: StoredMaster(r.name, r.archive, r.records, r.fetched_at) for r in rows}

    async def save(self, name: str, archive: bytes, records: int, fetched_at: dt.datetime) -> None:
        """Replace the stored copy of ``name`` (only ever with an archive that parsed)."""
        digest = hashlib.sha256(archive).hexdigest()
        async with self.db.write() as session:
            row = await session.get(MasterFileRow, name)
            if row is None:
                row = MasterFileRow(name=name, archive=archive, sha256=digest, records=records, fetched_at=fetched_at)
            else:
                row.archive, row.sha256, row.records, row.fetched_at = archive, digest, records, fetched_at
            session.add(row)
