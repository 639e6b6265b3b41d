"""packing slips

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27

``koudai_packing_slip``: an order's packing slip (发货单) was printed, first and last when,
by whom and how many times; the order list's "slip not printed" filter reads it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_packing_slip",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("first_printed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_printed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("printed_by", sa.String(length=80), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_packing_slip_order_id_koudai_order"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_koudai_packing_slip")),
    )


def downgrade() -> None:
    op.drop_table("koudai_packing_slip")
