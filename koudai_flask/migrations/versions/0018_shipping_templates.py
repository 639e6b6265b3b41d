"""shipping templates

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27

``koudai_shipping_template`` (运费模板): by the piece or by weight, a first and a further
fee, other figures for some provinces, provinces not delivered to, free from an amount;
``koudai_product.shipping_template_id`` names a product's (none: the shop's flat fee).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_shipping_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("basis", sa.String(length=8), nullable=False),
        sa.Column("first", sa.Integer(), nullable=False),
        sa.Column("first_fee", sa.Integer(), nullable=False),
        sa.Column("additional", sa.Integer(), nullable=False),
        sa.Column("additional_fee", sa.Integer(), nullable=False),
        sa.Column("free_over", sa.Integer(), nullable=True),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("excluded", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_shipping_template")),
        sa.UniqueConstraint("name", name=op.f("uq_koudai_shipping_template_name")),
    )
    with op.batch_alter_table("koudai_product", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shipping_template_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_koudai_product_shipping_template_id"),
            ["shipping_template_id"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_koudai_product_shipping_template_id_koudai_shipping_template"),
            "koudai_shipping_template",
            ["shipping_template_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("koudai_product", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_koudai_product_shipping_template_id_koudai_shipping_template"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_koudai_product_shipping_template_id"))
        batch_op.drop_column("shipping_template_id")
    op.drop_table("koudai_shipping_template")
