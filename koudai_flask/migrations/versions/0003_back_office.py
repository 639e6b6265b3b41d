"""back office

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_credential_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("value", sa.String(length=600), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_credential_cache")),
        sa.UniqueConstraint("name", name=op.f("uq_koudai_credential_cache_name")),
    )
    op.create_table(
        "koudai_message_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("wechat_template_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_message_template")),
        sa.UniqueConstraint(
            "event", "channel", name=op.f("uq_koudai_message_template_event_channel")
        ),
    )
    op.create_table(
        "koudai_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rank > 0 AND rank < 100", name=op.f("ck_koudai_role_rank_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_role")),
        sa.UniqueConstraint("name", name=op.f("uq_koudai_role_name")),
    )
    op.create_table(
        "koudai_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("provider_message_id", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_notification_order_id_koudai_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_notification")),
        sa.UniqueConstraint(
            "order_id",
            "event",
            "channel",
            name=op.f("uq_koudai_notification_order_id_event_channel"),
        ),
    )
    with op.batch_alter_table("koudai_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_notification_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index("ix_koudai_notification_status", ["status"], unique=False)

    op.create_table(
        "koudai_order_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_order_note_order_id_koudai_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_order_note")),
    )
    with op.batch_alter_table("koudai_order_note", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_order_note_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "koudai_tracking_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("context", sa.String(length=500), nullable=False),
        sa.Column("location", sa.String(length=120), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["koudai_shipment.id"],
            name=op.f("fk_koudai_tracking_event_shipment_id_koudai_shipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_tracking_event")),
        sa.UniqueConstraint(
            "shipment_id",
            "occurred_at",
            "context",
            name=op.f("uq_koudai_tracking_event_shipment_id_occurred_at_context"),
        ),
    )
    with op.batch_alter_table("koudai_tracking_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_koudai_tracking_event_shipment_time", ["shipment_id", "occurred_at"], unique=False
        )

    op.create_table(
        "koudai_shipment_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_koudai_shipment_line_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["koudai_order_line.id"],
            name=op.f("fk_koudai_shipment_line_order_line_id_koudai_order_line"),
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["koudai_shipment.id"],
            name=op.f("fk_koudai_shipment_line_shipment_id_koudai_shipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_shipment_line")),
        sa.UniqueConstraint(
            "shipment_id",
            "order_line_id",
            name=op.f("uq_koudai_shipment_line_shipment_id_order_line_id"),
        ),
    )
    with op.batch_alter_table("koudai_shipment_line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_shipment_line_shipment_id"), ["shipment_id"], unique=False
        )

    with op.batch_alter_table("koudai_shipment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscribed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("tracking_state", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("koudai_sku", schema=None) as batch_op:
        batch_op.add_column(sa.Column("low_stock_threshold", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("koudai_sku", schema=None) as batch_op:
        batch_op.drop_column("low_stock_threshold")

    with op.batch_alter_table("koudai_shipment", schema=None) as batch_op:
        batch_op.drop_column("pushed_at")
        batch_op.drop_column("tracking_state")
        batch_op.drop_column("last_polled_at")
        batch_op.drop_column("subscribed_at")

    with op.batch_alter_table("koudai_shipment_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_shipment_line_shipment_id"))

    op.drop_table("koudai_shipment_line")
    with op.batch_alter_table("koudai_tracking_event", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_tracking_event_shipment_time")

    op.drop_table("koudai_tracking_event")
    with op.batch_alter_table("koudai_order_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_order_note_order_id"))

    op.drop_table("koudai_order_note")
    with op.batch_alter_table("koudai_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_notification_status")
        batch_op.drop_index(batch_op.f("ix_koudai_notification_order_id"))

    op.drop_table("koudai_notification")
    op.drop_table("koudai_role")
    op.drop_table("koudai_message_template")
    op.drop_table("koudai_credential_cache")
