"""crm

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

CRM: customer merges, verified identities, tags and tag history, notes, saved segments.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _created_at() -> sa.Column[Any]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def _customer_fk(table: str, column: str = "customer_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["koudai_customer.id"], name=op.f(f"fk_{table}_{column}_koudai_customer")
    )


def upgrade() -> None:
    op.create_table(
        "koudai_segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_segment")),
        sa.UniqueConstraint("name", name=op.f("uq_koudai_segment_name")),
    )
    op.create_table(
        "koudai_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recomputed_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_tag")),
        sa.UniqueConstraint("name", name=op.f("uq_koudai_tag_name")),
    )
    op.create_table(
        "koudai_customer_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("split_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("split_by", sa.String(length=80), nullable=True),
        _created_at(),
        _customer_fk("koudai_customer_merge", "source_id"),
        _customer_fk("koudai_customer_merge", "target_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_customer_merge")),
    )
    with op.batch_alter_table("koudai_customer_merge", schema=None) as batch_op:
        batch_op.create_index(
            "ix_koudai_customer_merge_source_split", ["source_id", "split_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_koudai_customer_merge_target_id"), ["target_id"], unique=False
        )

    op.create_table(
        "koudai_customer_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _created_at(),
        _customer_fk("koudai_customer_note"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_customer_note")),
    )
    with op.batch_alter_table("koudai_customer_note", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_customer_note_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "koudai_customer_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        _created_at(),
        _customer_fk("koudai_customer_tag"),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["koudai_tag.id"], name=op.f("fk_koudai_customer_tag_tag_id_koudai_tag")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_customer_tag")),
        sa.UniqueConstraint(
            "customer_id", "tag_id", name=op.f("uq_koudai_customer_tag_customer_id_tag_id")
        ),
    )
    with op.batch_alter_table("koudai_customer_tag", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_customer_tag_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_koudai_customer_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "koudai_tag_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=True),
        _created_at(),
        _customer_fk("koudai_tag_history"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_tag_history")),
    )
    with op.batch_alter_table("koudai_tag_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_tag_history_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "koudai_identity_verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["koudai_customer_identity.id"],
            name=op.f("fk_koudai_identity_verification_identity_id_koudai_customer_identity"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_identity_verification")),
        sa.UniqueConstraint(
            "identity_id", name=op.f("uq_koudai_identity_verification_identity_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("koudai_identity_verification")
    with op.batch_alter_table("koudai_tag_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_tag_history_customer_id"))
    op.drop_table("koudai_tag_history")
    with op.batch_alter_table("koudai_customer_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_customer_tag_tag_id"))
        batch_op.drop_index(batch_op.f("ix_koudai_customer_tag_customer_id"))
    op.drop_table("koudai_customer_tag")
    with op.batch_alter_table("koudai_customer_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_customer_note_customer_id"))
    op.drop_table("koudai_customer_note")
    with op.batch_alter_table("koudai_customer_merge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_customer_merge_target_id"))
        batch_op.drop_index("ix_koudai_customer_merge_source_split")
    op.drop_table("koudai_customer_merge")
    op.drop_table("koudai_tag")
    op.drop_table("koudai_segment")
