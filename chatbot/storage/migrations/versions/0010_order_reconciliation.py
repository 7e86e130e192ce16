"""What the bot needs to learn an order's fate after a crash: the snapshot of the day's orders taken
before sending, when the request left (NULL: it never did), which process sent it, how often the
day's list was searched without finding it, and when the user was told the outcome.

Rows written before this revision are kept. Those still unresolved (``submitting``/``uncertain``) may
have been sent: ``sent_at`` is set to their creation time and their snapshot stays unknown (the
reconciler then only accepts an order listed at or after that time). Settled rows count as told.

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chatbot.storage.types import UTCDateTime

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_journal") as batch:
        batch.add_column(sa.Column("known_orders", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("sent_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("submitted_by", sa.String(140), nullable=True))
        batch.add_column(sa.Column("absent_looks", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("checked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("told_at", UTCDateTime(), nullable=True))
    journal = sa.table("order_journal", sa.column("status", sa.String()), sa.column("created_at", UTCDateTime()),
                       sa.column("updated_at", UTCDateTime()), sa.column("sent_at", UTCDateTime()),
                       sa.column("told_at", UTCDateTime()))
    op.execute(journal.update().values(sent_at=journal.c.created_at))
    op.execute(journal.update().where(journal.c.status.not_in(("submitting", "uncertain")))
               .values(told_at=journal.c.updated_at))
    op.create_index("ix_order_journal_status", "order_journal", ["status"])


def downgrade() -> None:
    op.drop_index("ix_order_journal_status", "order_journal")
    with op.batch_alter_table("order_journal") as batch:
        for name in ("told_at", "checked_at", "absent_looks", "submitted_by", "sent_at", "known_orders"):
            batch.drop_column(name)
