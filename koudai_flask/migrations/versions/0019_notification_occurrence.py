"""notification occurrence

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-27

``koudai_notification.occurrence``: an order's second partial refund is told to the buyer
too. A partial refund's notifications carry its refund's id, every other event's 0, and
the log is unique per (order, event, channel, occurrence) instead of (order, event,
channel).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("koudai_notification", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("occurrence", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.drop_constraint(
            batch_op.f("uq_koudai_notification_order_id_event_channel"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_koudai_notification_order_id_event_channel_occurrence"),
            ["order_id", "event", "channel", "occurrence"],
        )
    with op.batch_alter_table("koudai_notification", schema=None) as batch_op:
        batch_op.alter_column("occurrence", server_default=None)


def downgrade() -> None:
    # Only the first partial refund's messages can stay under the old key.
    op.execute(
        "DELETE FROM koudai_notification WHERE occurrence <> 0 AND id NOT IN ("
        "SELECT min(id) FROM koudai_notification GROUP BY order_id, event, channel)"
    )
    with op.batch_alter_table("koudai_notification", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_koudai_notification_order_id_event_channel_occurrence"),
            type_="unique",
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_koudai_notification_order_id_event_channel"),
            ["order_id", "event", "channel"],
        )
        batch_op.drop_column("occurrence")
