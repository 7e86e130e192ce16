"""Money as an exact decimal with its currency: the prices of cards, of the order journal and of alerts
become ``NUMERIC(24, 4)`` (whole won as before; dollars to the $0.0001 tick), each table gains a
``currency`` column.

Rows written before this revision are kept: every one of them is in won, which is the new column's
default, and their whole-won integers convert to the same numbers. The downgrade converts back to
integers (rounding half up, which only a non-KRW row could need) and drops the currency.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

MONEY_COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {  # table -> (column, nullable)
    "pending_orders": (("price", True), ("quoted_price", False)),
    "order_journal": (("price", True),),
    "alerts": (("threshold", False), ("reference_price", False)),
}
AMOUNT = sa.Numeric(24, 4)


def upgrade() -> None:
    for table, columns in MONEY_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, nullable in columns:
                batch.alter_column(name, existing_type=sa.Integer(), type_=AMOUNT, existing_nullable=nullable,
                                   postgresql_using=f"{name}::numeric(24, 4)")
            batch.add_column(sa.Column("currency", sa.String(3), nullable=False, server_default="KRW"))


def downgrade() -> None:
    for table, columns in MONEY_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_column("currency")
            for name, nullable in columns:
                batch.alter_column(name, existing_type=AMOUNT, type_=sa.Integer(), existing_nullable=nullable,
                                   postgresql_using=f"round({name})::integer")
