"""Every table of the bot. Each arrives by an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from chatbot.storage.types import UTCDateTime, utcnow


class KisTokenRow(SQLModel, table=True):
    """A cached KIS access token, so a restart reuses it (KIS allows ~1 issuance a minute)."""

    __tablename__ = "kis_tokens"

    key: str = Field(primary_key=True, max_length=64)  # sha256 of environment + host + app key
    access_token: str
    expires_at: float  # epoch seconds
    issued_at: float
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class SimDocumentRow(SQLModel, table=True):
    """The embedded simulator's state: one JSON document per paper account, plus market and auth."""

    __tablename__ = "sim_documents"

    key: str = Field(primary_key=True, max_length=120)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
