"""onboarding

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25

The new owner's set-up wizard: which steps are done and what each last check found.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_onboarding_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("problem", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('todo', 'done', 'failed', 'skipped')",
            name=op.f("ck_koudai_onboarding_step_state_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_onboarding_step")),
        sa.UniqueConstraint("step", name=op.f("uq_koudai_onboarding_step_step")),
    )
    op.create_table(
        "koudai_merchant_credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("setting", sa.String(length=40), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_merchant_credential")),
        sa.UniqueConstraint("setting", name=op.f("uq_koudai_merchant_credential_setting")),
    )
    op.create_table(
        "koudai_shop_door",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_shop_door")),
    )


def downgrade() -> None:
    op.drop_table("koudai_shop_door")
    op.drop_table("koudai_merchant_credential")
    op.drop_table("koudai_onboarding_step")
