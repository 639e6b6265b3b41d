"""favourites

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-28

``koudai_favourite`` (收藏): the products a buyer keeps in their favourites, one row per
buyer and product.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_favourite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_favourite_customer_id_koudai_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["koudai_product.id"],
            name=op.f("fk_koudai_favourite_product_id_koudai_product"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_favourite")),
        sa.UniqueConstraint(
            "customer_id", "product_id", name=op.f("uq_koudai_favourite_customer_id_product_id")
        ),
    )
    with op.batch_alter_table("koudai_favourite", schema=None) as batch_op:
        batch_op.create_index("ix_koudai_favourite_product_id", ["product_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("koudai_favourite", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_favourite_product_id")
    op.drop_table("koudai_favourite")
