"""Where a fill event's quantity came from (``order_events.source``): ``notice`` for one execution notice
(that fill's own quantity), ``listed`` for a cumulative reading of KIS's list of the day's orders (fill
catch-up, reconciliation: what the order's filled quantity had grown to). A live notice handled after a
listed reading may already be inside it; the source lets the fill watcher see that and ask KIS instead of
counting (and telling) the fill twice (chatbot.service.fills).

Rows written before this revision have no source and read as live notices (NULL), as they were counted.
The downgrade drops the column; the quantities (the events' details) are kept.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_events") as batch:
        batch.add_column(sa.Column("source", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_events") as batch:
        batch.drop_column("source")
