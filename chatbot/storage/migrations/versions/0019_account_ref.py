"""The account a confirmation card was quoted for and a conditional order sells on
(``pending_orders.account_ref``, ``conditional_orders.account_ref``): an unkeyed digest of the environment,
the user and the account number (chatbot.service.cards.account_ref) — an identity that tells two accounts
apart, not a secrecy measure (the number is stored in plain text in ``credentials.account`` and
``order_journal.account``, and an 8-digit number is found from its digest by trying them all). A card
pressed, or a conditional order firing, when the user's account is another one (after /login, /logout, a
paper /reset) sends nothing.

Rows written before this revision have no account (NULL): such a card is checked as before (it expires
within minutes); such a conditional order fires as before until the user's account next changes, which
cancels it (it cannot be told apart from one armed on the old account). The downgrade drops both columns.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("pending_orders", "conditional_orders"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account_ref", sa.String(32), nullable=True))


def downgrade() -> None:
    for table in ("conditional_orders", "pending_orders"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("account_ref")
