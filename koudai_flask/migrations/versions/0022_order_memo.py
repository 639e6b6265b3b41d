"""order memo

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-28

``koudai_order_memo`` (卖家备注, 旗帜): the seller's memo and flag on an order, one row per
order that has one, kept beside the order and synced with a Taobao trade's memo both ways.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_order_memo",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.Column("flag", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("push_pending", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("flag >= 0 AND flag <= 5", name=op.f("ck_koudai_order_memo_flag_range")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_order_memo_order_id_koudai_order"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_koudai_order_memo")),
    )
    with op.batch_alter_table("koudai_order_memo", schema=None) as batch_op:
        batch_op.create_index("ix_koudai_order_memo_flag", ["flag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("koudai_order_memo", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_order_memo_flag")
    op.drop_table("koudai_order_memo")
