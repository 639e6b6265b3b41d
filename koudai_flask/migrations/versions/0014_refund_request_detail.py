"""refund request detail

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27

``koudai_order_event.detail``: what a refund request asked for, when the buyer said — the
units by SKU, and whether the goods go back (退货退款).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("koudai_order_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("koudai_order_event", schema=None) as batch_op:
        batch_op.drop_column("detail")
