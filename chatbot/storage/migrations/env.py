"""Alembic environment: runs on the connection handed over by ``Database.migrate``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from chatbot.storage.tables import declare_partial_indexes  # registers the tables on SQLModel.metadata

declare_partial_indexes()

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only Database.migrate drives migrations
    raise RuntimeError("run migrations through chatbot.storage.Database.migrate()")

# pysqlite opens its transaction only before DML, so a migration's DDL ran in autocommit: one failing half-way
# (a refused downgrade) left the steps before it done and the version stamp as it was. Opened first, SQLite's
# DDL is transactional like PostgreSQL's: all of a run or none of it.
if connection.dialect.name == "sqlite" and not connection.connection.driver_connection.in_transaction:
    connection.exec_driver_sql("BEGIN IMMEDIATE")

context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
