"""US orders beside domestic ones: which market a card and a journal row belong to, the US exchange
and the US order type (LIMIT, LOO, LOC, MOO, MOC). Prices are revision 0011's exact decimals with their
currency (a US row: dollars, ``USD``).

Rows written before this revision are domestic (``KRX``), which is what the server default gives
them; the downgrade drops the columns, and refuses while any US row exists (its exchange would be
lost, and nothing else says where to cancel it).

Revision ID: 0015
Revises: 0011 (the integrator re-chains)
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0011"  # the brief gave "0010"; chained after i14-axis's 0011 (merged here) so one head
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
        market: sa.ColumnClause[object] = sa.column("market")
        us_rows = bind.execute(sa.select(sa.func.count()).select_from(sa.table(table, market))
                               .where(market != "KRX")).scalar()
        if us_rows:
            raise RuntimeError(f"{table} holds {us_rows} US rows: settle and purge them before downgrading")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for name in ("order_type", "exchange", "market"):
                batch.drop_column(name)
