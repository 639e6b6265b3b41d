"""Assertions shared by tests: the ledger invariant."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from koudai_flask.models import StockLevel, StockMovement


def assert_ledger_consistent(session: Session) -> None:
    """Levels equal the sums of their movements; nothing negative; reserved <= on hand."""
    session.expire_all()
    sums = {
        (sku_id, location_id): (on_hand, reserved)
        for sku_id, location_id, on_hand, reserved in session.execute(
            select(
                StockMovement.sku_id,
                StockMovement.location_id,
                func.sum(StockMovement.on_hand_delta),
                func.sum(StockMovement.reserved_delta),
            ).group_by(StockMovement.sku_id, StockMovement.location_id)
        )
    }
    for level in session.scalars(select(StockLevel)):
        expected = sums.get((level.sku_id, level.location_id), (0, 0))
        assert (level.on_hand, level.reserved) == expected, level.sku_id
        assert level.on_hand >= 0
        assert level.reserved >= 0
        assert level.on_hand - level.reserved >= 0
