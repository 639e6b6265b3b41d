"""webhooks

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25

Outbound webhook subscriptions and their deliveries.
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
