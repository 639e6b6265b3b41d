"""stock alerts

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28

``koudai_stock_alert`` (到货提醒): a buyer asked to be told when a sold-out SKU is back; one
row per (SKU, buyer), waiting, being sent, sent or failed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_stock_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("armed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("provider_message_id", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_stock_alert_customer_id_koudai_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_stock_alert_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_stock_alert")),
        sa.UniqueConstraint(
            "sku_id", "customer_id", name=op.f("uq_koudai_stock_alert_sku_id_customer_id")
        ),
    )
    with op.batch_alter_table("koudai_stock_alert", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_stock_alert_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_koudai_stock_alert_status_sku", ["status", "sku_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("koudai_stock_alert", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_stock_alert_status_sku")
        batch_op.drop_index(batch_op.f("ix_koudai_stock_alert_customer_id"))
    op.drop_table("koudai_stock_alert")
