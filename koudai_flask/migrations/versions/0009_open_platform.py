"""open platform

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25

API keys (prefix and SHA-256 of the secret, scopes, channel list, revocation, last use) and
the replies kept for POSTs made with an Idempotency-Key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["koudai_staff_member.id"],
            name=op.f("fk_koudai_api_key_owner_id_koudai_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_koudai_api_key_prefix")),
    )
    with op.batch_alter_table("koudai_api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_api_key_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "koudai_idempotency_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["koudai_api_key.id"],
            name=op.f("fk_koudai_idempotency_record_api_key_id_koudai_api_key"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_idempotency_record")),
        sa.UniqueConstraint(
            "api_key_id", "key", name=op.f("uq_koudai_idempotency_record_api_key_id_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("koudai_idempotency_record")
    with op.batch_alter_table("koudai_api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_api_key_owner_id"))
    op.drop_table("koudai_api_key")
