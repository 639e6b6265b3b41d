"""social

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

WeChat Official Account messages, keyword replies and the customer-service inbox; Weibo mentions, keyword rules and alerts.
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
