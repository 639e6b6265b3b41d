"""return address

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27

``koudai_shop_profile.return_address``: where buyers send the goods of a return (退货地址):
``{"name", "phone", "address"}``, set with the shop's profile and shown to a buyer who asks
to send goods back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("koudai_shop_profile", schema=None) as batch_op:
        batch_op.add_column(sa.Column("return_address", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("koudai_shop_profile", schema=None) as batch_op:
        batch_op.drop_column("return_address")
