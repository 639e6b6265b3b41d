"""The shared stock ledger: one ``StockLevel`` per SKU and location, every change a movement.

Rules (DESIGN.md, "The stock ledger"):
- ``available = on_hand - reserved`` and neither level ever goes negative; the database's
  check constraints back this up.
- Reservations take stock with one conditional UPDATE, so two buyers can never both get the
  last unit, on SQLite or PostgreSQL, and no lock is held across a request.
- Every change writes a ``StockMovement`` with a unique idempotency key and a
  ``stock.changed`` outbox event in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from koudai_flask.config import config_value
from koudai_flask.errors import NotFound, OutOfStock, ValidationError
from koudai_flask.models import (
    Channel,
    ChannelListing,
    Location,
    Reservation,
    StockLevel,
    StockMovement,
)
from koudai_flask.models.base import utcnow
from koudai_flask.services.ledger import (
    StockSnapshot,
    close_part,
    close_reservation,
    get_location,
    get_sku,
    read_snapshot,
    reserve_stock,
    stock_level,
    write_movement,
)
from koudai_flask.services.transaction import current_session, unit_of_work


def _check_quantity(quantity: object, what: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValidationError(f"{what} must be a positive integer, got {quantity!r}")
    return quantity


def _replayed(session: Session, idempotency_key: str | None) -> StockMovement | None:
    if idempotency_key is None:
        return None
    return session.scalar(
        select(StockMovement).where(StockMovement.idempotency_key == idempotency_key)
    )


def _snapshot_of_movement(session: Session, movement: StockMovement) -> StockSnapshot:
    level = session.scalar(
        select(StockLevel).where(
            StockLevel.sku_id == movement.sku_id, StockLevel.location_id == movement.location_id
        )
    )
    assert level is not None
    return read_snapshot(session, level)


# -- public API ------------------------------------------------------------------------------


def create_location(code: str, name: str) -> Location:
    with unit_of_work() as session:
        if session.scalar(select(Location).where(Location.code == code)) is not None:
            raise ValidationError(f"stock location {code!r} already exists")
        location = Location(code=code, name=name)
        session.add(location)
        session.flush()
        return location


def adjust(
    sku_code: str,
    delta: int,
    *,
    reason: str = "adjustment",
    source: str = "",
    reference: str = "",
    note: str = "",
    idempotency_key: str | None = None,
    location: str | None = None,
) -> StockSnapshot:
    """Add ``delta`` (negative to remove) to the on-hand count of a SKU.

    A decrease that would leave less on hand than is reserved raises ``OutOfStock``. With an
    ``idempotency_key`` already used, nothing changes and the current stock is returned.
    """
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise ValidationError(f"delta must be a non-zero integer, got {delta!r}")
    try:
        with unit_of_work() as session:
            previous = _replayed(session, idempotency_key)
            if previous is not None:
                return _snapshot_of_movement(session, previous)
            sku = get_sku(session, sku_code)
            level = stock_level(session, sku, get_location(session, location))
            moved = session.execute(
                update(StockLevel)
                .execution_options(synchronize_session=False)
                .where(StockLevel.id == level.id, StockLevel.on_hand + delta >= StockLevel.reserved)
                .values(on_hand=StockLevel.on_hand + delta)
            ).rowcount  # type: ignore[attr-defined]
            if moved != 1:
                session.refresh(level)
                raise OutOfStock(sku_code, -delta, level.available)
            return write_movement(
                session,
                level,
                on_hand_delta=delta,
                reserved_delta=0,
                reason=reason,
                source=source,
                reference=reference,
                idempotency_key=idempotency_key,
                note=note,
            )
    except IntegrityError as exc:
        return _after_key_race(idempotency_key, exc)


def set_on_hand(
    sku_code: str,
    quantity: int,
    *,
    source: str,
    reference: str = "",
    idempotency_key: str | None = None,
    location: str | None = None,
) -> StockSnapshot:
    """Set the on-hand count to an absolute figure (a stocktake, an ERP's count).

    Written as an adjustment movement of the difference. A count below what is reserved for
    open orders raises ``OutOfStock``: those orders must be cancelled first.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise ValidationError(f"quantity must be an integer >= 0, got {quantity!r}")
    try:
        with unit_of_work() as session:
            previous = _replayed(session, idempotency_key)
            if previous is not None:
                return _snapshot_of_movement(session, previous)
            sku = get_sku(session, sku_code)
            level = lock_level(session, stock_level(session, sku, get_location(session, location)))
            if quantity < level.reserved:
                raise OutOfStock(sku_code, level.reserved, quantity)
            delta = quantity - level.on_hand
            if delta == 0:
                return read_snapshot(session, level)
            level.on_hand = quantity
            session.flush()
            return write_movement(
                session,
                level,
                on_hand_delta=delta,
                reserved_delta=0,
                reason="count",
                source=source,
                reference=reference,
                idempotency_key=idempotency_key,
            )
    except IntegrityError as exc:
        return _after_key_race(idempotency_key, exc)


def lock_level(session: Session, level: StockLevel) -> StockLevel:
    """``level``, held and read afresh: a no-op UPDATE takes the row lock (PostgreSQL) or
    the write lock (SQLite), so its figures cannot change before this transaction ends."""
    session.execute(
        update(StockLevel)
        .execution_options(synchronize_session=False)
        .where(StockLevel.id == level.id)
        .values(on_hand=StockLevel.on_hand)
    )
    session.refresh(level)
    return level


def _after_key_race(idempotency_key: str | None, exc: IntegrityError) -> StockSnapshot:
    """A concurrent call with the same key won; return what it left."""
    session = current_session()
    previous = _replayed(session, idempotency_key)
    if previous is None:
        raise exc
    return _snapshot_of_movement(session, previous)


def reserve(
    sku_code: str,
    quantity: int,
    *,
    idempotency_key: str,
    ttl: int | None = None,
    source: str = "",
    reference: str = "",
    location: str | None = None,
) -> Reservation:
    """Hold stock outside an order (a channel's own checkout, a manual hold).

    The hold expires after ``ttl`` seconds (default ``KOUDAI_RESERVATION_TTL``); the same
    ``idempotency_key`` returns the same reservation without holding more.
    """
    _check_quantity(quantity)
    if not idempotency_key:
        raise ValidationError("reserve needs an idempotency_key")
    with unit_of_work() as session:
        existing = session.scalar(
            select(Reservation).where(Reservation.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return existing
        sku = get_sku(session, sku_code)
        seconds = ttl if ttl is not None else config_value("RESERVATION_TTL")
        return reserve_stock(
            session,
            sku,
            quantity,
            order_id=None,
            expires_at=utcnow() + timedelta(seconds=seconds),
            key=idempotency_key,
            source=source,
            reference=reference,
            location=get_location(session, location),
        )


def _get_reservation(session: Session, reservation_id: int) -> Reservation:
    reservation = session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound(f"unknown reservation {reservation_id}")
    return reservation


def release(reservation_id: int) -> bool:
    """Give a held quantity back; False if it was already released, shipped or expired."""
    with unit_of_work() as session:
        return close_reservation(session, _get_reservation(session, reservation_id), "released")


def commit(reservation_id: int) -> bool:
    """The held goods left the warehouse: on hand and reserved both drop."""
    with unit_of_work() as session:
        return close_reservation(session, _get_reservation(session, reservation_id), "committed")


def expire_holds(now: datetime | None = None) -> int:
    """Release expired reservations that belong to no order; returns how many."""
    now = now or utcnow()
    with unit_of_work() as session:
        due = session.scalars(
            select(Reservation)
            .where(
                Reservation.status == "active",
                Reservation.order_id.is_(None),
                Reservation.expires_at < now,
            )
            .order_by(Reservation.id)
        ).all()
        return sum(close_reservation(session, r, "expired") for r in due)


def available(sku_code: str, *, location: str | None = None) -> int:
    """On hand minus reserved at ``location`` (the default location when None)."""
    session = current_session()
    sku = get_sku(session, sku_code)
    loc = get_location(session, location)
    level = session.scalar(
        select(StockLevel).where(StockLevel.sku_id == sku.id, StockLevel.location_id == loc.id)
    )
    return 0 if level is None else level.on_hand - level.reserved


def allocation(available_units: int, *, share: Decimal, buffer: int, cap: int | None) -> int:
    """``max(0, min(cap, floor((available - buffer) * share)))``, computed exactly."""
    shown = ((Decimal(available_units - buffer)) * Decimal(share)).to_integral_value(ROUND_FLOOR)
    quantity = int(shown)
    if cap is not None:
        quantity = min(cap, quantity)
    return max(0, quantity)


def channel_quantity(sku_code: str, channel: str) -> int:
    """How many units of ``sku_code`` the channel should show, by its listing's rule."""
    session = current_session()
    sku = get_sku(session, sku_code)
    listing = session.scalar(
        select(ChannelListing)
        .join(Channel)
        .where(Channel.name == channel, ChannelListing.sku_id == sku.id)
    )
    if listing is None:
        raise NotFound(f"SKU {sku_code!r} is not linked to channel {channel!r}")
    return allocation(
        available(sku_code), share=listing.share, buffer=listing.buffer, cap=listing.cap
    )


# The ledger's in-transaction steps, reachable from here as they always were.
__all__ = [
    "StockSnapshot",
    "adjust",
    "allocation",
    "available",
    "channel_quantity",
    "close_reservation",
    "commit",
    "close_part",
    "create_location",
    "expire_holds",
    "get_location",
    "get_sku",
    "release",
    "reserve",
    "reserve_stock",
    "set_on_hand",
    "stock_level",
]
