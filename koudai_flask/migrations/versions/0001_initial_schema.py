"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("koudai",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_audit_entry")),
    )
    with op.batch_alter_table("koudai_audit_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_koudai_audit_entry_object", ["object_type", "object_id"], unique=False
        )

    op.create_table(
        "koudai_category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["koudai_category.id"],
            name=op.f("fk_koudai_category_parent_id_koudai_category"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_category")),
        sa.UniqueConstraint("slug", name=op.f("uq_koudai_category_slug")),
    )
    op.create_table(
        "koudai_channel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_channel")),
        sa.UniqueConstraint("name", name=op.f("uq_koudai_channel_name")),
    )
    op.create_table(
        "koudai_customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_customer")),
        sa.UniqueConstraint("user_id", name=op.f("uq_koudai_customer_user_id")),
    )
    with op.batch_alter_table("koudai_customer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_customer_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_koudai_customer_phone"), ["phone"], unique=False)

    op.create_table(
        "koudai_location",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_location")),
        sa.UniqueConstraint("code", name=op.f("uq_koudai_location_code")),
    )
    op.create_table(
        "koudai_outbox_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_outbox_event")),
    )
    with op.batch_alter_table("koudai_outbox_event", schema=None) as batch_op:
        batch_op.create_index("ix_koudai_outbox_event_status_id", ["status", "id"], unique=False)

    op.create_table(
        "koudai_staff_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=True),
        sa.Column("granted_by_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["granted_by_id"],
            ["koudai_staff_member.id"],
            name=op.f("fk_koudai_staff_member_granted_by_id_koudai_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_staff_member")),
        sa.UniqueConstraint("email", name=op.f("uq_koudai_staff_member_email")),
        sa.UniqueConstraint("user_id", name=op.f("uq_koudai_staff_member_user_id")),
    )
    op.create_table(
        "koudai_customer_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_customer_identity_customer_id_koudai_customer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_customer_identity")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_koudai_customer_identity_kind_value")),
    )
    with op.batch_alter_table("koudai_customer_identity", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_customer_identity_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "koudai_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=160), nullable=True),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("subtotal", sa.Integer(), nullable=False),
        sa.Column("shipping_fee", sa.Integer(), nullable=False),
        sa.Column("discount", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("total >= 0", name=op.f("ck_koudai_order_total_not_negative")),
        sa.ForeignKeyConstraint(
            ["channel"],
            ["koudai_channel.name"],
            name=op.f("fk_koudai_order_channel_koudai_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_order_customer_id_koudai_customer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_order")),
        sa.UniqueConstraint(
            "channel", "external_id", name=op.f("uq_koudai_order_channel_external_id")
        ),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_koudai_order_idempotency_key")),
        sa.UniqueConstraint("number", name=op.f("uq_koudai_order_number")),
    )
    with op.batch_alter_table("koudai_order", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_order_channel"), ["channel"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_koudai_order_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_koudai_order_status_created", ["status", "created_at"], unique=False
        )

    op.create_table(
        "koudai_product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("featured", sa.Boolean(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("sales_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["koudai_category.id"],
            name=op.f("fk_koudai_product_category_id_koudai_category"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_product")),
        sa.UniqueConstraint("slug", name=op.f("uq_koudai_product_slug")),
    )
    with op.batch_alter_table("koudai_product", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_product_category_id"), ["category_id"], unique=False
        )
        batch_op.create_index(
            "ix_koudai_product_status_created", ["status", "created_at"], unique=False
        )

    op.create_table(
        "koudai_sync_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=40), nullable=False),
        sa.Column("position", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["koudai_channel.id"],
            name=op.f("fk_koudai_sync_cursor_channel_id_koudai_channel"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_sync_cursor")),
        sa.UniqueConstraint(
            "channel_id", "stream", name=op.f("uq_koudai_sync_cursor_channel_id_stream")
        ),
    )
    op.create_table(
        "koudai_order_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_order_event_order_id_koudai_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_order_event")),
    )
    with op.batch_alter_table("koudai_order_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_order_event_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "koudai_payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_koudai_payment_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["koudai_order.id"], name=op.f("fk_koudai_payment_order_id_koudai_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_payment")),
        sa.UniqueConstraint(
            "provider", "transaction_id", name=op.f("uq_koudai_payment_provider_transaction_id")
        ),
    )
    with op.batch_alter_table("koudai_payment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_payment_order_id"), ["order_id"], unique=False)

    op.create_table(
        "koudai_product_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("alt", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["koudai_product.id"],
            name=op.f("fk_koudai_product_image_product_id_koudai_product"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_product_image")),
        sa.UniqueConstraint(
            "product_id", "position", name=op.f("uq_koudai_product_image_product_id_position")
        ),
    )
    with op.batch_alter_table("koudai_product_image", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_product_image_product_id"), ["product_id"], unique=False
        )

    op.create_table(
        "koudai_refund",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_koudai_refund_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["koudai_order.id"], name=op.f("fk_koudai_refund_order_id_koudai_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_refund")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_koudai_refund_idempotency_key")),
    )
    with op.batch_alter_table("koudai_refund", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_refund_order_id"), ["order_id"], unique=False)

    op.create_table(
        "koudai_shipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["koudai_order.id"], name=op.f("fk_koudai_shipment_order_id_koudai_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_shipment")),
        sa.UniqueConstraint(
            "carrier", "tracking_number", name=op.f("uq_koudai_shipment_carrier_tracking_number")
        ),
    )
    with op.batch_alter_table("koudai_shipment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_shipment_order_id"), ["order_id"], unique=False)

    op.create_table(
        "koudai_sku",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("compare_at_price", sa.Integer(), nullable=True),
        sa.Column("barcode", sa.String(length=64), nullable=True),
        sa.Column("weight_grams", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price >= 0", name=op.f("ck_koudai_sku_price_not_negative")),
        sa.CheckConstraint("weight_grams >= 0", name=op.f("ck_koudai_sku_weight_not_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["koudai_product.id"],
            name=op.f("fk_koudai_sku_product_id_koudai_product"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_sku")),
        sa.UniqueConstraint("code", name=op.f("uq_koudai_sku_code")),
    )
    with op.batch_alter_table("koudai_sku", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_sku_barcode"), ["barcode"], unique=False)
        batch_op.create_index(batch_op.f("ix_koudai_sku_product_id"), ["product_id"], unique=False)

    op.create_table(
        "koudai_channel_listing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("external_item_id", sa.String(length=64), nullable=False),
        sa.Column("external_sku_id", sa.String(length=64), nullable=False),
        sa.Column("share", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("buffer", sa.Integer(), nullable=False),
        sa.Column("cap", sa.Integer(), nullable=True),
        sa.Column("last_pushed_quantity", sa.Integer(), nullable=True),
        sa.Column("last_seen_quantity", sa.Integer(), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "buffer >= 0", name=op.f("ck_koudai_channel_listing_buffer_not_negative")
        ),
        sa.CheckConstraint(
            "cap IS NULL OR cap >= 0", name=op.f("ck_koudai_channel_listing_cap_not_negative")
        ),
        sa.CheckConstraint(
            "share >= 0 AND share <= 1", name=op.f("ck_koudai_channel_listing_share_fraction")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["koudai_channel.id"],
            name=op.f("fk_koudai_channel_listing_channel_id_koudai_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_channel_listing_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_channel_listing")),
        sa.UniqueConstraint(
            "channel_id",
            "external_item_id",
            "external_sku_id",
            name=op.f("uq_koudai_channel_listing_channel_id_external_item_id_external_sku_id"),
        ),
        sa.UniqueConstraint(
            "channel_id", "sku_id", name=op.f("uq_koudai_channel_listing_channel_id_sku_id")
        ),
    )
    with op.batch_alter_table("koudai_channel_listing", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_channel_listing_sku_id"), ["sku_id"], unique=False
        )

    op.create_table(
        "koudai_order_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("sku_code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("shipped_quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_koudai_order_line_quantity_positive")),
        sa.CheckConstraint(
            "unit_price >= 0", name=op.f("ck_koudai_order_line_unit_price_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_order_line_order_id_koudai_order"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_order_line_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_order_line")),
    )
    with op.batch_alter_table("koudai_order_line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_order_line_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_koudai_order_line_sku_id"), ["sku_id"], unique=False)

    op.create_table(
        "koudai_reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_koudai_reservation_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["koudai_location.id"],
            name=op.f("fk_koudai_reservation_location_id_koudai_location"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_reservation_order_id_koudai_order"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_reservation_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_reservation")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_koudai_reservation_idempotency_key")),
    )
    with op.batch_alter_table("koudai_reservation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_reservation_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            "ix_koudai_reservation_status_expires", ["status", "expires_at"], unique=False
        )

    op.create_table(
        "koudai_stock_level",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_koudai_stock_level_on_hand_not_negative")),
        sa.CheckConstraint(
            "reserved <= on_hand", name=op.f("ck_koudai_stock_level_reserved_within_on_hand")
        ),
        sa.CheckConstraint(
            "reserved >= 0", name=op.f("ck_koudai_stock_level_reserved_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["koudai_location.id"],
            name=op.f("fk_koudai_stock_level_location_id_koudai_location"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_stock_level_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_stock_level")),
        sa.UniqueConstraint(
            "sku_id", "location_id", name=op.f("uq_koudai_stock_level_sku_id_location_id")
        ),
    )
    op.create_table(
        "koudai_stock_movement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("on_hand_delta", sa.Integer(), nullable=False),
        sa.Column("reserved_delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["koudai_location.id"],
            name=op.f("fk_koudai_stock_movement_location_id_koudai_location"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_stock_movement_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_stock_movement")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_koudai_stock_movement_idempotency_key")
        ),
    )
    with op.batch_alter_table("koudai_stock_movement", schema=None) as batch_op:
        batch_op.create_index(
            "ix_koudai_stock_movement_sku_created", ["sku_id", "created_at"], unique=False
        )

    _seed_rows()


def _seed_rows() -> None:
    """The own shop is the built-in channel ``web``; stock starts at location ``main``."""
    now = datetime.now(UTC)
    channel = sa.table(
        "koudai_channel",
        sa.column("name", sa.String),
        sa.column("kind", sa.String),
        sa.column("settings", sa.JSON),
        sa.column("active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    location = sa.table(
        "koudai_location",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        channel, [{"name": "web", "kind": "web", "settings": {}, "active": True, "created_at": now}]
    )
    op.bulk_insert(location, [{"code": "main", "name": "Main warehouse", "created_at": now}])


def downgrade() -> None:
    with op.batch_alter_table("koudai_stock_movement", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_stock_movement_sku_created")

    op.drop_table("koudai_stock_movement")
    op.drop_table("koudai_stock_level")
    with op.batch_alter_table("koudai_reservation", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_reservation_status_expires")
        batch_op.drop_index(batch_op.f("ix_koudai_reservation_order_id"))

    op.drop_table("koudai_reservation")
    with op.batch_alter_table("koudai_order_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_order_line_sku_id"))
        batch_op.drop_index(batch_op.f("ix_koudai_order_line_order_id"))

    op.drop_table("koudai_order_line")
    with op.batch_alter_table("koudai_channel_listing", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_channel_listing_sku_id"))

    op.drop_table("koudai_channel_listing")
    with op.batch_alter_table("koudai_sku", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_sku_product_id"))
        batch_op.drop_index(batch_op.f("ix_koudai_sku_barcode"))

    op.drop_table("koudai_sku")
    with op.batch_alter_table("koudai_shipment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_shipment_order_id"))

    op.drop_table("koudai_shipment")
    with op.batch_alter_table("koudai_refund", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_refund_order_id"))

    op.drop_table("koudai_refund")
    with op.batch_alter_table("koudai_product_image", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_product_image_product_id"))

    op.drop_table("koudai_product_image")
    with op.batch_alter_table("koudai_payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_payment_order_id"))

    op.drop_table("koudai_payment")
    with op.batch_alter_table("koudai_order_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_order_event_order_id"))

    op.drop_table("koudai_order_event")
    op.drop_table("koudai_sync_cursor")
    with op.batch_alter_table("koudai_product", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_product_status_created")
        batch_op.drop_index(batch_op.f("ix_koudai_product_category_id"))

    op.drop_table("koudai_product")
    with op.batch_alter_table("koudai_order", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_order_status_created")
        batch_op.drop_index(batch_op.f("ix_koudai_order_customer_id"))
        batch_op.drop_index(batch_op.f("ix_koudai_order_channel"))

    op.drop_table("koudai_order")
    with op.batch_alter_table("koudai_customer_identity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_customer_identity_customer_id"))

    op.drop_table("koudai_customer_identity")
    op.drop_table("koudai_staff_member")
    with op.batch_alter_table("koudai_outbox_event", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_outbox_event_status_id")

    op.drop_table("koudai_outbox_event")
    op.drop_table("koudai_location")
    with op.batch_alter_table("koudai_customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_customer_phone"))
        batch_op.drop_index(batch_op.f("ix_koudai_customer_email"))

    op.drop_table("koudai_customer")
    op.drop_table("koudai_channel")
    op.drop_table("koudai_category")
    with op.batch_alter_table("koudai_audit_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_audit_entry_object")

    op.drop_table("koudai_audit_entry")
