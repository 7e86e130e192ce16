"""Users' KIS credentials (encrypted), master-key check values, key versions on every secret.

Rows written before this revision (paper keys, cached tokens) stay readable: their ``key_version``
is NULL until the start-up upgrade encrypts them with the current master key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chatbot.storage.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("telegram_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("account", sa.String(16), nullable=False),
        sa.Column("app_key", sa.Text(), nullable=False),
        sa.Column("app_secret", sa.Text(), nullable=False),
        sa.Column("key_hint", sa.String(16), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "master_key_checks",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("check_value", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("paper_accounts") as batch:
        batch.alter_column("app_key", type_=sa.Text(), existing_nullable=False)
        batch.alter_column("app_secret", type_=sa.Text(), existing_nullable=False)
        batch.add_column(sa.Column("key_version", sa.Integer(), nullable=True))
    with op.batch_alter_table("kis_tokens") as batch:
        batch.add_column(sa.Column("key_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kis_tokens") as batch:
        batch.drop_column("key_version")
    with op.batch_alter_table("paper_accounts") as batch:
        batch.drop_column("key_version")
    op.drop_table("master_key_checks")
    op.drop_table("credentials")
