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

    async def touch(self, telegram_id: int, language_code: str | None) -> UserRow:
        async with self.db.session() as session:
            row = await session.get(UserRow, telegram_id)
            language = language_of(language_code)
            if row is None:
                row = UserRow(telegram_id=telegram_id, language=language)
            else:
                row.language = language
                row.last_seen = utcnow()
            session.add(row)
            await session.commit()
            return row
