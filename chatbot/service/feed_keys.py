"""Whose own KIS key serves their own live prices (the feed planner's :class:`~chatbot.alerts.feeds.KeyDirectory`).

In virtual and real mode a registered user's app key opens their own WebSocket session, which carries
their own symbols (and their fill notices). In simulator mode paper users' symbols ride the operator's
shared sessions: the planner's capacity rules are about users who bring a key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from sqlmodel import col, func, select

from chatbot.alerts.feeds import FeedCapacity
from chatbot.service.accounts import AccountProvider
from chatbot.service.views import Mode
from chatbot.storage.db import Database
from chatbot.storage.tables import CredentialRow

__all__ = ["AccountKeys", "FeedCapacity"]
QUERY_CHUNK = 500  # users asked about per query


class AccountKeys:
    def __init__(self, db: Database, accounts: AccountProvider, mode: Mode) -> None:
        """Among replicas users' own keys carry their symbols too: the planner opens a session only on the
        replica holding that user's session lock, the feed's owner (see :mod:`chatbot.service.replicas`)."""
        self.db = db
        self.accounts = accounts
        self.mode = mode

    async def own_keys(self, user_ids: Collection[int]) -> set[int]:
        if self.mode is Mode.PAPER:
            return set()
        ids, found = list(user_ids), set[int]()
        async with self.db.session() as session:
            for start in range(0, len(ids), QUERY_CHUNK):
                found.update((await session.exec(select(CredentialRow.telegram_id).where(
                    col(CredentialRow.telegram_id).in_(ids[start:start + QUERY_CHUNK])))).all())
        return found

    async def approval_key(self, user_id: int) -> Callable[[], Awaitable[str]]:
        return (await self.accounts.for_user(user_id)).client.approval_key

    async def registered(self) -> int:
        if self.mode is Mode.PAPER:
            return 0
        async with self.db.session() as session:
            return int((await session.exec(select(func.count()).select_from(CredentialRow))).one())
