"""Revision 0016: every status the order journal writes fits its column on both engines (a partial
fill's ``partially_filled`` did not on PostgreSQL, so the fill was never recorded nor told), and the
revision goes down and up again."""

from __future__ import annotations

from sqlmodel import select

from chatbot.storage.db import Database
from chatbot.storage.tables import OrderEventRow, OrderJournalRow
from tests.test_money_storage import _to

STATUSES = ("submitting", "accepted", "rejected", "failed", "uncertain", "not_placed", "partially_filled", "filled")


async def test_every_journal_status_fits_its_columns(db_url: str) -> None:
    db = Database(db_url)
    try:
        await db.migrate()
        async with db.write() as session:
            for n, status in enumerate(STATUSES):
                row = OrderJournalRow(idempotency_key=f"k{n}", owner_id=1, environment="simulator", account="",
                                      action="order", side="buy", code="005930", quantity=10, status=status)
                session.add(row)
                await session.flush()
                assert row.id is not None
                session.add(OrderEventRow(journal_id=row.id, status=status, detail="4@₩70,000"))
        async with db.session() as session:
            journal = {r.status for r in (await session.exec(select(OrderJournalRow))).all()}
            events = {r.status for r in (await session.exec(select(OrderEventRow))).all()}
        assert journal == events == set(STATUSES)
        async with db.engine.begin() as conn:  # down past 0016 (rows that no longer fit would refuse) and up
            await conn.execute(OrderEventRow.__table__.delete())  # type: ignore[attr-defined]
            await conn.execute(OrderJournalRow.__table__.delete())  # type: ignore[attr-defined]
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0015", down=True))
        await db.migrate()
    finally:
        await db.dispose()
