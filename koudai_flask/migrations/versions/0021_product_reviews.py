"""product reviews

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28

``koudai_product_review`` (评价): a buyer's stars and words on an item they received, one
per order line, published or hidden by staff, with the shop's reply; the product keeps the
count and the sum of the stars of its published reviews.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_product_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=500), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("author", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reply", sa.String(length=500), nullable=False),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "rating >= 1 AND rating <= 5", name=op.f("ck_koudai_product_review_rating_range")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_product_review_customer_id_koudai_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["koudai_order.id"],
            name=op.f("fk_koudai_product_review_order_id_koudai_order"),
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["koudai_order_line.id"],
            name=op.f("fk_koudai_product_review_order_line_id_koudai_order_line"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["koudai_product.id"],
            name=op.f("fk_koudai_product_review_product_id_koudai_product"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["koudai_sku.id"], name=op.f("fk_koudai_product_review_sku_id_koudai_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_product_review")),
        sa.UniqueConstraint("order_line_id", name=op.f("uq_koudai_product_review_order_line_id")),
    )
    with op.batch_alter_table("koudai_product_review", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_product_review_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_koudai_product_review_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            "ix_koudai_product_review_product_status", ["product_id", "status"], unique=False
        )
    with op.batch_alter_table("koudai_product", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("rating_total", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("koudai_product", schema=None) as batch_op:
        batch_op.drop_column("rating_total")
        batch_op.drop_column("review_count")
    with op.batch_alter_table("koudai_product_review", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_product_review_product_status")
        batch_op.drop_index(batch_op.f("ix_koudai_product_review_order_id"))
        batch_op.drop_index(batch_op.f("ix_koudai_product_review_customer_id"))
    op.drop_table("koudai_product_review")
