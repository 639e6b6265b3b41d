"""return parcels

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27

``koudai_shipment.direction``: ``out`` for a parcel the shop sent, ``return`` for the one a
buyer sends back for a return (退货), whose waybill is tracked like ours so staff see when
it arrives.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("koudai_shipment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("direction", sa.String(length=8), nullable=False, server_default="out")
        )
        batch_op.create_check_constraint(
            op.f("ck_koudai_shipment_direction_known"), "direction IN ('out', 'return')"
        )


def downgrade() -> None:
    with op.batch_alter_table("koudai_shipment", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_koudai_shipment_direction_known"), type_="check")
        batch_op.drop_column("direction")
