"""campaigns funnel

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

Campaigns, their recipients and tracked links; funnel events and daily rollups.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koudai_campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("wechat_template_id", sa.String(length=64), nullable=True),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("link_base", sa.String(length=300), nullable=True),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["koudai_segment.id"],
            name=op.f("fk_koudai_campaign_segment_id_koudai_segment"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_campaign")),
    )
    with op.batch_alter_table("koudai_campaign", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_campaign_segment_id"), ["segment_id"], unique=False
        )

    op.create_table(
        "koudai_campaign_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("provider_message_id", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["koudai_campaign.id"],
            name=op.f("fk_koudai_campaign_recipient_campaign_id_koudai_campaign"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_campaign_recipient_customer_id_koudai_customer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_campaign_recipient")),
        sa.UniqueConstraint(
            "campaign_id",
            "customer_id",
            name=op.f("uq_koudai_campaign_recipient_campaign_id_customer_id"),
        ),
    )
    with op.batch_alter_table("koudai_campaign_recipient", schema=None) as batch_op:
        batch_op.create_index(
            "ix_koudai_campaign_recipient_batch", ["campaign_id", "batch", "status"], unique=False
        )

    op.create_table(
        "koudai_funnel_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("visitor", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_funnel_event")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_koudai_funnel_event_dedupe_key")),
    )
    with op.batch_alter_table("koudai_funnel_event", schema=None) as batch_op:
        batch_op.create_index("ix_koudai_funnel_event_occurred", ["occurred_at"], unique=False)

    op.create_table(
        "koudai_funnel_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_funnel_daily")),
        sa.UniqueConstraint(
            "day",
            "campaign_id",
            "channel",
            "event",
            name=op.f("uq_koudai_funnel_daily_day_campaign_id_channel_event"),
        ),
    )

    op.create_table(
        "koudai_order_attribution",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_number", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("visitor", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_order_attribution")),
        sa.UniqueConstraint("order_number", name=op.f("uq_koudai_order_attribution_order_number")),
    )


def downgrade() -> None:
    op.drop_table("koudai_order_attribution")
    op.drop_table("koudai_funnel_daily")
    op.drop_table("koudai_funnel_event")
    with op.batch_alter_table("koudai_campaign_recipient", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_campaign_recipient_batch")
    op.drop_table("koudai_campaign_recipient")
    with op.batch_alter_table("koudai_campaign", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_campaign_segment_id"))
    op.drop_table("koudai_campaign")
