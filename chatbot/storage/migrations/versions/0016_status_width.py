"""The order journal's status and its events' status hold ``partially_filled`` (16 characters): both
columns were ``VARCHAR(12)``, so on PostgreSQL recording a partial fill of a journalled order failed
(``StringDataRightTruncation``) and the fill was never told. Widened to 20; SQLite does not enforce
the length, so only PostgreSQL changes. Existing rows are kept as they are.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = (("order_journal", "status"), ("order_events", "status"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.String(20), existing_type=sa.String(12), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.String(12), existing_type=sa.String(20), existing_nullable=False)
