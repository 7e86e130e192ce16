"""Leases: which processes hold the database (running bots; maintenance such as rotate-key).

Revision ID: 0007
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chatbot.storage.types import UTCDateTime

revision = "0007"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(160), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(140), nullable=False),
        sa.Column("host", sa.String(100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False, server_default=""),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_leases_kind", "leases", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_leases_kind", "leases")
    op.drop_table("leases")
