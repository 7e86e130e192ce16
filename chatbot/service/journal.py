"""The order journal: every order attempt that left the bot, with each status it went through."""

from __future__ import annotations

from sqlmodel import select

from chatbot.storage.db import Database
from chatbot.storage.tables import OrderEventRow, OrderJournalRow, PendingOrderRow
from chatbot.storage.types import utcnow


class OrderJournal:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self, card: PendingOrderRow, account: str) -> int:
        async with self.db.session() as session:
            row = OrderJournalRow(idempotency_key=card.id, owner_id=card.owner_id, environment=card.environment,
                                  account=account, action=card.action, side=card.side, code=card.code,
                                  quantity=card.quantity, price=card.price, original_order_no=card.order_no,
                                  status="submitting")
            session.add(row)
            await session.flush()
            assert row.id is not None
            session.add(OrderEventRow(journal_id=row.id, status="submitting"))
            await session.commit()
            return row.id

    async def record(self, journal_id: int, status: str, *, kis_order_no: str | None = None,
                     msg_cd: str | None = None, message: str | None = None) -> None:
        async with self.db.session() as session:
            row = await session.get(OrderJournalRow, journal_id)
            if row is None:
                return
            row.status = status
            row.kis_order_no = kis_order_no or row.kis_order_no
            row.msg_cd = msg_cd or row.msg_cd
            row.message = message or row.message
            row.updated_at = utcnow()
            session.add(row)
            session.add(OrderEventRow(journal_id=journal_id, status=status, detail=message))
            await session.commit()

    async def by_key(self, idempotency_key: str) -> OrderJournalRow | None:
        async with self.db.session() as session:
            rows = await session.exec(select(OrderJournalRow).where(OrderJournalRow.idempotency_key == idempotency_key))
            return rows.first()
