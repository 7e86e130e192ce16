"""Persistence: SQLModel tables on SQLite (default) or PostgreSQL, migrated by Alembic at start-up."""

from chatbot.storage.db import Database

__all__ = ["Database"]
