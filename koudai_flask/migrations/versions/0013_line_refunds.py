"""line refunds

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27

``koudai_order_line.refunded_quantity``: units refunded line by line (a return of part of a
parcel, or a line a marketplace refunded before it shipped), which are no longer to ship.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("koudai_order_line", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("refunded_quantity", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("koudai_order_line", schema=None) as batch_op:
        batch_op.drop_column("refunded_quantity")
