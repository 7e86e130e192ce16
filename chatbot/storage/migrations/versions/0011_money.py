"""Money as an exact decimal with its currency: the prices of cards, of the order journal and of alerts
become ``NUMERIC(24, 4)`` on PostgreSQL (whole won as before; dollars to the $0.0001 tick), each table
gains a ``currency`` column.

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
down_revision = "0012"
branch_labels = None
depends_on = None

MONEY_COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {  # table -> (column, nullable)
    "pending_orders": (("price", True), ("quoted_price", False)),
    "order_journal": (("price", True),),
    "alerts": (("threshold", False), ("reference_price", False)),
}
AMOUNT = sa.Numeric(24, 4)


def upgrade() -> None:
    # On SQLite the declared type is left as it is: its INTEGER affinity already stores a whole amount as
    # an integer and a fraction as it is given (storage.types.Amount reads both exactly), and changing a
    # column's type there means copying the table (seconds on a first start, for nothing).
    retype = op.get_bind().dialect.name != "sqlite"
    for table, columns in MONEY_COLUMNS.items():
        if retype:
            for name, nullable in columns:
                op.alter_column(table, name, existing_type=sa.Integer(), type_=AMOUNT, existing_nullable=nullable,
                                postgresql_using=f"{name}::numeric(24, 4)")
        op.add_column(table, sa.Column("currency", sa.String(3), nullable=False, server_default="KRW"))


def downgrade() -> None:
    retype = op.get_bind().dialect.name != "sqlite"
    for table, columns in MONEY_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_column("currency")
        for name, nullable in columns:
            if retype:
                op.alter_column(table, name, existing_type=AMOUNT, type_=sa.Integer(), existing_nullable=nullable,
                                postgresql_using=f"round({name})::integer")
            else:  # a fraction (only a non-KRW row has one) back to whole units
                column: sa.ColumnClause[object] = sa.column(name)
                op.execute(sa.table(table, column).update().where(column.is_not(None))
                           .values({name: sa.cast(sa.func.round(column), sa.Integer())}))
