"""sync engine

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

The connector framework: channel status, dirty listings to push, order bindings, dead
letters, drift records and receipts of signed inbound messages. Existing rows get
status "ok" and push_version 0.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_channel_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("receipt_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["koudai_channel.id"],
            name=op.f("fk_koudai_channel_receipt_channel_id_koudai_channel"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_channel_receipt")),
        sa.UniqueConstraint(
            "channel_id", "receipt_id", name=op.f("uq_koudai_channel_receipt_channel_id_receipt_id")
        ),
    )
    op.create_table(
        "koudai_sync_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("error_kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["koudai_channel.id"],
            name=op.f("fk_koudai_sync_failure_channel_id_koudai_channel"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_sync_failure")),
    )
    with op.batch_alter_table("koudai_sync_failure", schema=None) as batch_op:
        batch_op.create_index(
            "ix_koudai_sync_failure_status_channel", ["status", "channel_id"], unique=False
        )

    op.create_table(
        "koudai_channel_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("remote_status", sa.String(length=40), nullable=False),
        sa.Column("remote_modified", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shipment_pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["koudai_channel.id"],
            name=op.f("fk_koudai_channel_order_channel_id_koudai_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_channel_order_order_id_koudai_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_channel_order")),
        sa.UniqueConstraint(
            "channel_id", "external_id", name=op.f("uq_koudai_channel_order_channel_id_external_id")
        ),
        sa.UniqueConstraint(
            "channel_id", "order_id", name=op.f("uq_koudai_channel_order_channel_id_order_id")
        ),
    )
    with op.batch_alter_table("koudai_channel_order", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_channel_order_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "koudai_drift_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("published", sa.Integer(), nullable=True),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("repaired", sa.Boolean(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["koudai_channel.id"],
            name=op.f("fk_koudai_drift_record_channel_id_koudai_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_drift_record_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_drift_record")),
    )
    with op.batch_alter_table("koudai_drift_record", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_drift_record_channel_id"), ["channel_id"], unique=False
        )

    with op.batch_alter_table("koudai_channel", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="ok")
        )
        batch_op.add_column(sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("koudai_channel_listing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remote_modified", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dirty_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("push_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(
            batch_op.f("ix_koudai_channel_listing_dirty_since"), ["dirty_since"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("koudai_channel_listing", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_channel_listing_dirty_since"))
        batch_op.drop_column("push_version")
        batch_op.drop_column("dirty_since")
        batch_op.drop_column("remote_modified")

    with op.batch_alter_table("koudai_channel", schema=None) as batch_op:
        batch_op.drop_column("last_error_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("last_sync_at")
        batch_op.drop_column("status")

    with op.batch_alter_table("koudai_drift_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_drift_record_channel_id"))

    op.drop_table("koudai_drift_record")
    with op.batch_alter_table("koudai_channel_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_channel_order_order_id"))

    op.drop_table("koudai_channel_order")
    with op.batch_alter_table("koudai_sync_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_sync_failure_status_channel")

    op.drop_table("koudai_sync_failure")
    op.drop_table("koudai_channel_receipt")
