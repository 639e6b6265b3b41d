"""Stocktake by scanner (盘点): find the SKU a scan names, and set its count.

Staff with ``stock.adjust`` walk the shelves: a scan (the SKU's barcode, or its code typed)
finds the SKU, they count what is there and enter it. The count becomes the SKU's on-hand
figure at the default location, written as a ``count`` movement of the difference
(``inventory.set_on_hand``) and audited. A count is refused, changing nothing, when the
shelf moved while they counted (a parcel went out: the figure they saw is no longer the
book's, unless the book now shows exactly their count) or when it is below what open
orders hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from koudai_flask.errors import OutOfStock, ValidationError
from koudai_flask.models import Sku
from koudai_flask.services import inventory, staff
from koudai_flask.services.transaction import current_session, unit_of_work

MAX_COUNT = 10_000_000


@dataclass(frozen=True)
class Counted:
    sku: str
    before: int  # on hand before the count
    on_hand: int
    reserved: int

    @property
    def change(self) -> int:
        return self.on_hand - self.before


def find(scanned: str) -> list[Sku]:
    """The SKUs a scan names: the one whose code it is, else every SKU whose barcode it is
    (two products may carry one supplier's barcode: the page lets staff choose)."""
    text = scanned.strip()
    if not text:
        return []
    session = current_session()
    sku = session.scalar(select(Sku).where(Sku.code == text))
    if sku is not None:
        return [sku]
    return list(session.scalars(select(Sku).where(Sku.barcode == text).order_by(Sku.code)))


def count(user_id: str, code: str, counted: int, *, seen: int | None = None) -> Counted:
    """Set ``code``'s on-hand figure to ``counted``; ``seen`` is the figure the page showed
    when counting began (``count_moved`` if the book changed since, nothing written)."""
    staff.require(user_id, "stock.adjust")
    if isinstance(counted, bool) or not isinstance(counted, int) or not 0 <= counted <= MAX_COUNT:
        raise ValidationError(
            f"a count is a whole number from 0 to {MAX_COUNT}",
            reason="count_quantity",
            detail={"most": MAX_COUNT},
        )
    actor = f"staff:{user_id}"
    with unit_of_work() as session:
        sku = inventory.get_sku(session, code)
        # Held before comparing: no shipment slips in between the check and the count.
        level = inventory.lock_level(
            session, inventory.stock_level(session, sku, inventory.get_location(session))
        )
        before = level.on_hand
        # A book that moved to exactly the count needs nothing (the same count sent again).
        if seen is not None and seen != before and counted != before:
            raise ValidationError(
                f"{code}: the book changed from {seen} to {before} while counting",
                reason="count_moved",
                detail={"sku": code, "seen": seen, "now": before},
            )
        try:
            snapshot = inventory.set_on_hand(code, counted, source=actor, reference="stocktake")
        except OutOfStock:
            raise ValidationError(
                f"{code}: {level.reserved} units are held for open orders; count at least that",
                reason="count_below_reserved",
                detail={"sku": code, "reserved": level.reserved},
            ) from None
        staff.audit(
            actor,
            "stock.count",
            "sku",
            code,
            {"on_hand": before, "reserved": level.reserved},
            {"on_hand": snapshot.on_hand, "reserved": snapshot.reserved},
        )
        return Counted(code, before, snapshot.on_hand, snapshot.reserved)


__all__ = ["MAX_COUNT", "Counted", "count", "find"]
