"""Helpers shared by tests: the ledger invariant, fresh SQLite databases."""

from __future__ import annotations

import shutil
from pathlib import Path

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


def fresh_sqlite_url(template: Path, folder: Path, name: str = "koudai.db") -> str:
    """A new, empty, seeded koudai SQLite database in ``folder``: a copy of the session's
    ``sqlite_template`` (creating every table anew costs a file sync per statement)."""
    shutil.copyfile(template, folder / name)
    return f"sqlite:///{folder / name}"
