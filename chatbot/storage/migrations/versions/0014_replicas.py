"""Replicas on one PostgreSQL database: the Telegram updates taken (an update Telegram re-sends,
perhaps to another replica, is processed once), where a /login in progress lives (its next steps
are forwarded to that replica), and an index for replicas sending the outbox side by
side, and one for the feed's owner finding alerts armed on other replicas. A new table and indexes:
existing rows are untouched.

Revision ID: 0014
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chatbot.storage.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_updates",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(140), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_processed_updates_received_at", "processed_updates", ["received_at"])
    # Replicas send side by side, each taking the oldest pending push of a chat.
    op.create_table(
        "login_flows",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(140), nullable=False),
        sa.Column("url", sa.String(300), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    # The feed's owner reads the alerts armed on other replicas since its last look, every second.
    op.create_index("ix_alerts_status_updated_at", "alerts", ["status", "updated_at"])
    pending = sa.column("status") == "pending"
    op.create_index("ix_outbox_pending", "outbox", ["id"], postgresql_where=pending, sqlite_where=pending)
    op.create_index("ix_outbox_pending_chat", "outbox", ["chat_id", "id"], postgresql_where=pending,
                    sqlite_where=pending)


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_chat", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_index("ix_alerts_status_updated_at", table_name="alerts")
    op.drop_table("login_flows")
    op.drop_index("ix_processed_updates_received_at", table_name="processed_updates")
    op.drop_table("processed_updates")
