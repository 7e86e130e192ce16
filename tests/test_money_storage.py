"""Money in storage: revision 0011 turns the stored prices into exact decimals with a currency,
keeping the rows written before it (and the downgrade gives them back as they were)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlmodel import select

from chatbot.storage.db import MIGRATIONS, Database
from chatbot.storage.tables import AlertRow, OrderJournalRow, PendingOrderRow
from chatbot.storage.types import utcnow


def _to(revision: str, down: bool = False) -> Any:
    def run(connection: sa.Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)
    return run


OLD_ROWS = [
    ("INSERT INTO pending_orders (id, owner_id, chat_id, environment, action, side, code, name, quantity, price, "
     "quoted_price, status, created_at, expires_at, updated_at) VALUES ('tok', 1, 1, 'simulator', 'order', 'buy', "
     "'005930', '삼성전자', 3, 70000, 70100, 'pending', :now, :now, :now)"),
    ("INSERT INTO pending_orders (id, owner_id, chat_id, environment, action, side, code, name, quantity, price, "
     "quoted_price, status, created_at, expires_at, updated_at) VALUES ('mkt', 1, 1, 'simulator', 'order', 'sell', "
     "'005930', '삼성전자', 1, NULL, 3555, 'pending', :now, :now, :now)"),
    ("INSERT INTO order_journal (idempotency_key, owner_id, environment, account, action, side, code, quantity, "
     "price, status, absent_looks, created_at, updated_at) VALUES ('tok', 1, 'simulator', '', 'order', 'buy', "
     "'005930', 3, 70000, 'accepted', 0, :now, :now)"),
    ("INSERT INTO alerts (owner_id, chat_id, language, code, name, direction, threshold, reference_price, repeat, "
     "cooldown_seconds, status, fired_count, created_at, updated_at) VALUES (1, 1, 'ko', '005930', '삼성전자', "
     "'above', 75000, 70000, false, 600, 'armed', 0, :now, :now)"),
]


async def test_rows_written_before_0011_keep_their_prices_in_won(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0010"))
        async with db.engine.begin() as conn:
            for statement in OLD_ROWS:
                await conn.execute(sa.text(statement), {"now": utcnow()})
        await db.migrate()
        async with db.session() as session:
            limit = await session.get(PendingOrderRow, "tok")
            market = await session.get(PendingOrderRow, "mkt")
            journal = (await session.exec(select(OrderJournalRow))).one()
            alert = (await session.exec(select(AlertRow))).one()
        assert limit is not None and market is not None
        assert (limit.price, limit.quoted_price, limit.currency) == (Decimal(70000), Decimal(70100), "KRW")
        assert str(limit.price) == "70000" and f"{alert.threshold:,}" == "75,000"  # no padding from the column
        assert (market.price, market.quoted_price) == (None, Decimal(3555))
        assert (journal.price, journal.currency) == (Decimal(70000), "KRW")
        assert (alert.threshold, alert.reference_price, alert.currency) == (Decimal(75000), Decimal(70000), "KRW")

        async with db.write() as session:  # a dollar price to the sub-dollar tick is kept exactly
            session.add(AlertRow(owner_id=2, chat_id=2, code="AAPL", name="애플", direction="below",
                                 threshold=Decimal("190.2501"), reference_price=Decimal("0.0001"), currency="USD"))
        async with db.session() as session:
            usd = (await session.exec(select(AlertRow).where(AlertRow.currency == "USD"))).one()
        assert (usd.threshold, usd.reference_price) == (Decimal("190.2501"), Decimal("0.0001"))
        async with db.write() as session:
            await session.delete(usd)

        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0010", down=True))
        async with db.engine.connect() as conn:
            prices = (await conn.execute(sa.text("SELECT price, quoted_price FROM pending_orders ORDER BY id"))).all()
            alerts = (await conn.execute(sa.text("SELECT threshold, reference_price FROM alerts"))).all()
        assert [tuple(r) for r in prices] == [(None, 3555), (70000, 70100)]
        assert [tuple(r) for r in alerts] == [(75000, 70000)]
        assert all(isinstance(v, int) for r in prices + alerts for v in r if v is not None)
        await db.migrate()  # and up again
    finally:
        await db.dispose()


def test_a_float_is_never_stored_as_money() -> None:
    from chatbot.storage.types import Amount

    with pytest.raises(TypeError):
        Amount().process_bind_param(1.5, sa.create_engine("sqlite://").dialect)  # type: ignore[arg-type]
