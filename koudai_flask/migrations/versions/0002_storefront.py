"""storefront: carts, address book, shop profile

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_shop_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=True),
        sa.Column("logo_path", sa.String(length=300), nullable=True),
        sa.Column("primary_color", sa.String(length=7), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_shop_profile")),
    )
    op.create_table(
        "koudai_address",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("province", sa.String(length=40), nullable=False),
        sa.Column("city", sa.String(length=40), nullable=False),
        sa.Column("district", sa.String(length=40), nullable=False),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("postcode", sa.String(length=12), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_address_customer_id_koudai_customer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_address")),
    )
    with op.batch_alter_table("koudai_address", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_address_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "koudai_cart_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_koudai_cart_line_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_cart_line_customer_id_koudai_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_cart_line_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_cart_line")),
        sa.UniqueConstraint(
            "customer_id", "sku_id", name=op.f("uq_koudai_cart_line_customer_id_sku_id")
        ),
    )
    with op.batch_alter_table("koudai_cart_line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_cart_line_customer_id"), ["customer_id"], unique=False
        )

    with op.batch_alter_table("koudai_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_provider", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("koudai_order", schema=None) as batch_op:
        batch_op.drop_column("payment_provider")

    with op.batch_alter_table("koudai_cart_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_cart_line_customer_id"))

    op.drop_table("koudai_cart_line")
    with op.batch_alter_table("koudai_address", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_address_customer_id"))

    op.drop_table("koudai_address")
    op.drop_table("koudai_shop_profile")
