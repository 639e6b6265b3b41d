"""social

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

WeChat Official Account messages, keyword replies and the customer-service inbox; Weibo mentions, keyword rules and alerts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "koudai_wechat_follower",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("subscribed_at", TZ, nullable=True),
        sa.Column("unsubscribed_at", TZ, nullable=True),
        sa.Column("scene", sa.String(length=64), nullable=True),
        sa.Column("last_inbound_at", TZ, nullable=True),
        sa.Column("last_message_at", TZ, nullable=True),
        sa.Column("last_preview", sa.String(length=120), nullable=False),
        sa.Column("unread", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_wechat_follower_customer_id_koudai_customer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_wechat_follower")),
        sa.UniqueConstraint("openid", name=op.f("uq_koudai_wechat_follower_openid")),
    )
    with op.batch_alter_table("koudai_wechat_follower", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_wechat_follower_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_koudai_wechat_follower_last_message_at"),
            ["last_message_at"],
            unique=False,
        )

    op.create_table(
        "koudai_wechat_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follower_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=True),
        sa.Column("event_key", sa.String(length=128), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("remote_created_at", TZ, nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["koudai_wechat_follower.id"],
            name=op.f("fk_koudai_wechat_message_follower_id_koudai_wechat_follower"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_wechat_message")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_koudai_wechat_message_dedupe_key")),
    )
    with op.batch_alter_table("koudai_wechat_message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_koudai_wechat_message_follower_time", ["follower_id", "id"], unique=False
        )

    op.create_table(
        "koudai_wechat_autoreply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("match", sa.String(length=16), nullable=False),
        sa.Column("keyword", sa.String(length=64), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_wechat_autoreply")),
        sa.UniqueConstraint(
            "trigger", "keyword", name=op.f("uq_koudai_wechat_autoreply_trigger_keyword")
        ),
    )

    op.create_table(
        "koudai_weibo_post",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("weibo_id", sa.String(length=32), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("screen_name", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("posted_at", TZ, nullable=True),
        sa.Column("status_id", sa.String(length=32), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["koudai_customer.id"],
            name=op.f("fk_koudai_weibo_post_customer_id_koudai_customer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_weibo_post")),
        sa.UniqueConstraint("kind", "weibo_id", name=op.f("uq_koudai_weibo_post_kind_weibo_id")),
    )
    with op.batch_alter_table("koudai_weibo_post", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_koudai_weibo_post_uid"), ["uid"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_koudai_weibo_post_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "koudai_weibo_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("keyword", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_weibo_rule")),
        sa.UniqueConstraint("keyword", name=op.f("uq_koudai_weibo_rule_keyword")),
    )

    op.create_table(
        "koudai_weibo_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("resolved_by", sa.String(length=80), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["koudai_weibo_post.id"],
            name=op.f("fk_koudai_weibo_alert_post_id_koudai_weibo_post"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["koudai_weibo_rule.id"],
            name=op.f("fk_koudai_weibo_alert_rule_id_koudai_weibo_rule"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_weibo_alert")),
        sa.UniqueConstraint(
            "post_id", "rule_id", name=op.f("uq_koudai_weibo_alert_post_id_rule_id")
        ),
    )
    with op.batch_alter_table("koudai_weibo_alert", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_koudai_weibo_alert_rule_id"), ["rule_id"], unique=False
        )
        batch_op.create_index("ix_koudai_weibo_alert_status", ["status", "id"], unique=False)

    op.create_table(
        "koudai_weibo_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=80), nullable=False),
        sa.Column("since_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_koudai_weibo_cursor")),
        sa.UniqueConstraint("stream", name=op.f("uq_koudai_weibo_cursor_stream")),
    )


def downgrade() -> None:
    op.drop_table("koudai_weibo_cursor")
    with op.batch_alter_table("koudai_weibo_alert", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_weibo_alert_status")
        batch_op.drop_index(batch_op.f("ix_koudai_weibo_alert_rule_id"))
    op.drop_table("koudai_weibo_alert")
    op.drop_table("koudai_weibo_rule")
    with op.batch_alter_table("koudai_weibo_post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_weibo_post_customer_id"))
        batch_op.drop_index(batch_op.f("ix_koudai_weibo_post_uid"))
    op.drop_table("koudai_weibo_post")
    op.drop_table("koudai_wechat_autoreply")
    with op.batch_alter_table("koudai_wechat_message", schema=None) as batch_op:
        batch_op.drop_index("ix_koudai_wechat_message_follower_time")
    op.drop_table("koudai_wechat_message")
    with op.batch_alter_table("koudai_wechat_follower", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_koudai_wechat_follower_last_message_at"))
        batch_op.drop_index(batch_op.f("ix_koudai_wechat_follower_customer_id"))
    op.drop_table("koudai_wechat_follower")
