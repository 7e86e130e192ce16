"""Until when the market-data feed was watched (``watermarks``): a restart, or a replica coming back
when every one was down, takes the time since as a feed gap (chatbot.service.watermark). A new
table: no existing row is touched; with no row yet (a database upgraded from 0016) no gap is assumed.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chatbot.storage.types import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watermarks",
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("watched_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("watermarks")
