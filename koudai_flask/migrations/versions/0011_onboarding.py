"""onboarding

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25

The new owner's set-up wizard: which steps are done and what each last check found.
"""

from __future__ import annotations

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
