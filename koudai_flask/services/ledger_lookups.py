"""The ledger's lookups: a SKU, a location and their level, and a level's figures as read.

A :class:`StockSnapshot` is what callers get back from every stock change; its
``stock.changed`` payload (:func:`stock_payload`) is the one the order engine's bulk insert
copies key for key. The steps that change stock are :mod:`koudai_flask.services.ledger`;
like them, nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from koudai_flask.config import config_value
from koudai_flask.errors import NotFound
from koudai_flask.models import Location, Sku, StockLevel


@dataclass(frozen=True)
class StockSnapshot:
    """A SKU's stock at one location right after a change."""

    sku: str
    location: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


# -- lookups ---------------------------------------------------------------------------------


def get_sku(session: Session, code: str) -> Sku:
    sku = session.scalar(select(Sku).where(Sku.code == code))
    if sku is None:
        raise NotFound(f"unknown SKU {code!r}", reason="unknown_sku", detail={"sku": code})
    return sku


def get_location(session: Session, code: str | None = None) -> Location:
    code = code or config_value("DEFAULT_LOCATION")
    location = session.scalar(select(Location).where(Location.code == code))
    if location is None:
        raise NotFound(
            f"unknown stock location {code!r}; create it with "
            "services.inventory.create_location() or run `flask koudai db upgrade`"
        )
    return location


def stock_level(session: Session, sku: Sku, location: Location) -> StockLevel:
    """The level row of ``sku`` at ``location``, created at zero on first use."""
    level = session.scalar(
        select(StockLevel).where(StockLevel.sku_id == sku.id, StockLevel.location_id == location.id)
    )
    if level is None:
        level = StockLevel(sku_id=sku.id, location_id=location.id, on_hand=0, reserved=0)
        session.add(level)
        session.flush()
    return level


def read_snapshot(session: Session, level: StockLevel) -> StockSnapshot:
    session.refresh(level)
    return StockSnapshot(
        sku=level.sku.code,
        location=level.location.code,
        on_hand=level.on_hand,
        reserved=level.reserved,
    )


def stock_payload(snapshot: StockSnapshot, *, reason: str, source: str) -> dict[str, Any]:
    return {
        "sku": snapshot.sku,
        "location": snapshot.location,
        "on_hand": snapshot.on_hand,
        "reserved": snapshot.reserved,
        "available": snapshot.available,
        "reason": reason,
        "source": source,
    }
