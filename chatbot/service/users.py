"""Users as the bot has seen them (id, language, first and last seen)."""

from __future__ import annotations

from chatbot.storage.db import Database
from chatbot.storage.tables import UserRow
from chatbot.storage.types import utcnow


def language_of(code: str | None) -> str:
    """Korean first; English when the user's Telegram language is English."""
    return "en" if (code or "").lower().startswith("en") else "ko"


class Users:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def touch(self, telegram_id: int, language_code: str | None) -> bool:
        """Record the user; True when they had blocked the bot and are back."""
        language = language_of(language_code)
        async with self.db.write() as session:
            row = await session.get(UserRow, telegram_id)
            returned = False
            if row is None:
                row = UserRow(telegram_id=telegram_id, language=language)
            else:
                returned = row.blocked
                row.language, row.blocked, row.last_seen = language, False, utcnow()
            session.add(row)
        return returned

    async def language(self, telegram_id: int) -> str:
        async with self.db.session() as session:
            row = await session.get(UserRow, telegram_id)
            return row.language if row else "ko"
