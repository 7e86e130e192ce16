"""Alembic environment: runs on the connection handed over by ``Database.migrate``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from chatbot.storage.tables import declare_partial_indexes  # registers the tables on SQLModel.metadata

declare_partial_indexes()

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only Database.migrate drives migrations
    raise RuntimeError("run migrations through chatbot.storage.Database.migrate()")

context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
