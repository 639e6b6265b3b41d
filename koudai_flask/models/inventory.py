"""The stock ledger: locations, levels, movements and reservations.

``StockLevel`` holds the running totals; every change to them is one ``StockMovement`` row
in the same transaction, so the sums of movements always equal the levels. The check
constraints make the database itself refuse a negative level.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from koudai_flask.models.base import Base, Timestamped

if TYPE_CHECKING:
    from koudai_flask.models.catalog import Sku


class Location(Base, Timestamped):
    __tablename__ = "koudai_location"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class StockLevel(Base):
    __tablename__ = "koudai_stock_level"
    __table_args__ = (
        UniqueConstraint("sku_id", "location_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("koudai_location.id"))
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)

    sku: Mapped[Sku] = relationship(back_populates="stock_levels")
    location: Mapped[Location] = relationship()

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(Base, Timestamped):
    __tablename__ = "koudai_stock_movement"
    __table_args__ = (Index("ix_koudai_stock_movement_sku_created", "sku_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("koudai_location.id"))
    on_hand_delta: Mapped[int] = mapped_column(default=0)
    reserved_delta: Mapped[int] = mapped_column(default=0)
    # adjustment | count | reservation | release | expiry | shipment
    reason: Mapped[str] = mapped_column(String(32))
    # Who caused it: "web", a channel name, "staff:<id>", "erp:<name>", "cli", ...
    source: Mapped[str] = mapped_column(String(64), default="")
    # What it belongs to, e.g. "order:KD2026..." or a stocktake id.
    reference: Mapped[str] = mapped_column(String(120), default="")
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    note: Mapped[str] = mapped_column(String(300), default="")


class Reservation(Base, Timestamped):
    """Stock held for one order line until it ships, is cancelled or expires."""

    __tablename__ = "koudai_reservation"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_koudai_reservation_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("koudai_location.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    quantity: Mapped[int]
    # active (held) | committed (shipped) | released (cancelled) | expired
    status: Mapped[str] = mapped_column(String(16), default="active")
    # None once paid: a paid order's stock is held until it ships or is refunded.
    expires_at: Mapped[datetime | None]
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
