"""Conditional orders (stop-loss, take-profit, trailing stop, bracket): one row each, moved
pending → armed → firing → placed | failed (or cancelled / expired) by conditional updates.

A new table: existing rows are untouched; the downgrade drops it.

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chatbot.storage.types import UTCDateTime

revision = "0012"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conditional_orders",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("market", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("stop_price", sa.BigInteger(), nullable=True),
        sa.Column("take_price", sa.BigInteger(), nullable=True),
        sa.Column("limit_price", sa.BigInteger(), nullable=True),
        sa.Column("trail_percent", sa.String(8), nullable=True),
        sa.Column("high_water", sa.BigInteger(), nullable=True),
        sa.Column("reference_price", sa.BigInteger(), nullable=False),
        sa.Column("card_token", sa.String(32), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("fired_leg", sa.String(8), nullable=True),
        sa.Column("fired_price", sa.BigInteger(), nullable=True),
        sa.Column("fired_time", sa.String(6), nullable=True),
        sa.Column("fire_key", sa.String(32), nullable=True),
        sa.Column("sold_quantity", sa.Integer(), nullable=True),
        sa.Column("order_no", sa.String(16), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("armed_at", UTCDateTime(), nullable=True),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_conditional_orders_owner_id", "conditional_orders", ["owner_id"])
    op.create_index("ix_conditional_orders_code", "conditional_orders", ["code"])
    op.create_index("ix_conditional_orders_card_token", "conditional_orders", ["card_token"])
    op.create_index("ix_conditional_orders_status", "conditional_orders", ["status"])


def downgrade() -> None:
    for column in ("status", "card_token", "code", "owner_id"):
        op.drop_index(f"ix_conditional_orders_{column}", "conditional_orders")
    op.drop_table("conditional_orders")
