"""The daily report at the close: each user's choice (``report_settings``) and the reports sent
(``daily_reports``, one per user, market and trading day: the unique key is what makes a second
replica or a restart send nothing more). Two new tables: no existing row is touched.

Revision ID: 0013
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chatbot.storage.types import UTCDateTime

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_settings",
        sa.Column("telegram_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, index=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "daily_reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False, index=True),
        sa.Column("market", sa.String(8), nullable=False),
        sa.Column("trading_day", sa.String(10), nullable=False),
        sa.Column("costs", sa.JSON(), nullable=True),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("telegram_id", "market", "trading_day", name="uq_daily_reports_user_day"),
    )


def downgrade() -> None:
    op.drop_table("daily_reports")
    op.drop_table("report_settings")
