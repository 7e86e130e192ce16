"""Revision 0015 (US orders): rows written before it stay domestic; the downgrade refuses while a US row
would lose its exchange, and goes through once there is none."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlmodel import select

from chatbot.storage.db import Database
from chatbot.storage.tables import OrderJournalRow, PendingOrderRow
from chatbot.storage.types import utcnow
from tests.test_money_storage import _to

OLD_CARD = ("INSERT INTO pending_orders (id, owner_id, chat_id, environment, action, side, code, name, quantity, "
            "price, quoted_price, currency, status, created_at, expires_at, updated_at) VALUES ('tok', 1, 1, "
            "'simulator', 'order', 'buy', '005930', '삼성전자', 3, 70000, 70100, 'KRW', 'pending', :now, :now, :now)")


async def test_0015_keeps_old_rows_domestic_and_guards_its_downgrade(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0011"))
        async with db.engine.begin() as conn:
            await conn.execute(sa.text(OLD_CARD), {"now": utcnow()})
        await db.migrate()
        async with db.session() as session:
            old = await session.get(PendingOrderRow, "tok")
        assert old is not None and (old.market, old.exchange, old.order_type) == ("KRX", None, None)
        async with db.write() as session:
            session.add(OrderJournalRow(idempotency_key="us1", owner_id=2, environment="simulator", account="",
                                        action="order", side="buy", code="AAPL", quantity=1,
                                        price=Decimal("190.5"), currency="USD", status="accepted", market="US",
                                        exchange="NASDAQ", order_type="LOC"))
        async with db.session() as session:
            us = (await session.exec(select(OrderJournalRow))).one()
        assert (us.market, us.exchange, us.order_type, us.price) == ("US", "NASDAQ", "LOC", Decimal("190.5"))
        with pytest.raises(RuntimeError, match="US rows"):
            async with db.engine.begin() as conn:
                await conn.run_sync(_to("0011", down=True))
        async with db.write() as session:
            await session.delete(await session.get(OrderJournalRow, us.id))
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0011", down=True))
        async with db.engine.connect() as conn:
            columns = {c["name"] for c in await conn.run_sync(
                lambda sync: sa.inspect(sync).get_columns("pending_orders"))}
        assert "market" not in columns and "currency" in columns
        await db.migrate()
    finally:
        await db.dispose()
