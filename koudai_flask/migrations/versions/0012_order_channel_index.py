"""order channel index

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26

``koudai_order.channel`` loses its own index: the unique (channel, external_id) constraint's
index starts with the same column and answers every lookup by channel, so the extra one only
cost a write on every order placed.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_koudai_order_channel", table_name="koudai_order")


def downgrade() -> None:
    op.create_index("ix_koudai_order_channel", "koudai_order", ["channel"], unique=False)
