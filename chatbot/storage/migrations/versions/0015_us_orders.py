"""US orders beside domestic ones: which market a card and a journal row belong to, the US exchange
and the US order type (LIMIT, LOO, LOC, MOO, MOC).

A US row keeps its prices in the existing integer columns as whole ten-thousandths of a dollar (US
prices are on a $0.0001 grid at most: ``chatbot.kis.overseas_orders.price_units``); ``market`` says
which unit a row's prices are in. Rows written before this revision are domestic (``KRX``), which is
what the server default gives them; the downgrade drops the columns (and would leave US rows'
prices meaningless, so it refuses while any US row exists).

Revision ID: 0015
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("pending_orders", "order_journal")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("market", sa.String(8), nullable=False, server_default="KRX"))
            batch.add_column(sa.Column("exchange", sa.String(8), nullable=True))
            batch.add_column(sa.Column("order_type", sa.String(8), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        us_rows = bind.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE market <> 'KRX'")).scalar()
        if us_rows:
            raise RuntimeError(f"{table} holds {us_rows} US rows: settle and purge them before downgrading")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for name in ("order_type", "exchange", "market"):
                batch.drop_column(name)
