"""marketing

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Marketing plugins: coupons and their codes and redemptions, full-reduction promotions, limited-time prices, order discounts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "koudai_coupon_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_coupon_batch")),
    )
    op.create_table(
        "koudai_coupon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("min_spend", sa.Integer(), nullable=False),
        sa.Column("max_discount", sa.Integer(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("total_limit", sa.Integer(), nullable=True),
        sa.Column("per_customer_limit", sa.Integer(), nullable=True),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('fixed', 'percent')", name=op.f("ck_koudai_coupon_kind_known")
        ),
        sa.CheckConstraint("value > 0", name=op.f("ck_koudai_coupon_value_positive")),
        sa.CheckConstraint("used >= 0", name=op.f("ck_koudai_coupon_used_not_negative")),
        sa.CheckConstraint(
            "total_limit IS NULL OR used <= total_limit",
            name=op.f("ck_koudai_coupon_used_within_limit"),
        ),
        _fk("koudai_coupon", "batch_id", "koudai_coupon_batch"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_coupon")),
        sa.UniqueConstraint("code", name=op.f("uq_koudai_coupon_code")),
    )
    with op.batch_alter_table("koudai_coupon", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_coupon_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "koudai_coupon_customer_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "used >= 0", name=op.f("ck_koudai_coupon_customer_use_used_not_negative")
        ),
        _fk("koudai_coupon_customer_use", "coupon_id", "koudai_coupon"),
        _fk("koudai_coupon_customer_use", "customer_id", "koudai_customer"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_coupon_customer_use")),
        sa.UniqueConstraint(
            "coupon_id",
            "customer_id",
            name=op.f("uq_koudai_coupon_customer_use_coupon_id_customer_id"),
        ),
    )
    with op.batch_alter_table("koudai_coupon_customer_use", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_coupon_customer_use_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "koudai_coupon_redemption",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("koudai_coupon_redemption", "coupon_id", "koudai_coupon"),
        _fk("koudai_coupon_redemption", "order_id", "koudai_order"),
        _fk("koudai_coupon_redemption", "customer_id", "koudai_customer"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_coupon_redemption")),
        sa.UniqueConstraint(
            "coupon_id", "order_id", name=op.f("uq_koudai_coupon_redemption_coupon_id_order_id")
        ),
    )
    with op.batch_alter_table("koudai_coupon_redemption", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_coupon_redemption_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "koudai_promotion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_promotion")),
    )
    op.create_table(
        "koudai_limited_price",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price >= 0", name=op.f("ck_koudai_limited_price_price_not_negative")),
        sa.CheckConstraint(
            "ends_at > starts_at", name=op.f("ck_koudai_limited_price_window_ordered")
        ),
        _fk("koudai_limited_price", "sku_id", "koudai_sku"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_limited_price")),
    )
    with op.batch_alter_table("koudai_limited_price", schema=None) as batch_op:
        batch_op.create_index(
            "ix_koudai_limited_price_sku_window", ["sku_id", "ends_at"], unique=False
        )

    op.create_table(
        "koudai_order_discount",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("plugin", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_koudai_order_discount_amount_positive")),
        _fk("koudai_order_discount", "order_id", "koudai_order"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_order_discount")),
    )
    with op.batch_alter_table("koudai_order_discount", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_order_discount_order_id"), ["order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("koudai_order_discount", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_order_discount_order_id"))
    op.drop_table("koudai_order_discount")
    with op.batch_alter_table("koudai_limited_price", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_limited_price_sku_window")
    op.drop_table("koudai_limited_price")
    op.drop_table("koudai_promotion")
    with op.batch_alter_table("koudai_coupon_redemption", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_coupon_redemption_order_id"))
    op.drop_table("koudai_coupon_redemption")
    with op.batch_alter_table("koudai_coupon_customer_use", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_coupon_customer_use_customer_id"))
    op.drop_table("koudai_coupon_customer_use")
    with op.batch_alter_table("koudai_coupon", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_coupon_batch_id"))
    op.drop_table("koudai_coupon")
    op.drop_table("koudai_coupon_batch")
