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

import uuid
from dataclasses import dataclass
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
    Sku,
    StockLevel,
    StockMovement,
)
from koudai_flask.models.base import utcnow
from koudai_flask.services import outbox
from koudai_flask.services.transaction import current_session, unit_of_work


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
        raise NotFound(f"unknown SKU {code!r}")
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


def _snapshot(session: Session, level: StockLevel) -> StockSnapshot:
    session.refresh(level)
    return StockSnapshot(
        sku=level.sku.code,
        location=level.location.code,
        on_hand=level.on_hand,
        reserved=level.reserved,
    )


def _check_quantity(quantity: object, what: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValidationError(f"{what} must be a positive integer, got {quantity!r}")
    return quantity


def _write_movement(
    session: Session,
    level: StockLevel,
    *,
    on_hand_delta: int,
    reserved_delta: int,
    reason: str,
    source: str,
    reference: str,
    idempotency_key: str | None,
    note: str = "",
) -> StockSnapshot:
    session.add(
        StockMovement(
            sku_id=level.sku_id,
            location_id=level.location_id,
            on_hand_delta=on_hand_delta,
            reserved_delta=reserved_delta,
            reason=reason,
            source=source,
            reference=reference,
            idempotency_key=idempotency_key or f"{reason}:{uuid.uuid4().hex}",
            note=note,
        )
    )
    snapshot = _snapshot(session, level)
    _stock_event(session, snapshot, reason=reason, source=source)
    return snapshot


def _stock_event(session: Session, snapshot: StockSnapshot, *, reason: str, source: str) -> None:
    outbox.record(
        session,
        "stock.changed",
        {
            "sku": snapshot.sku,
            "location": snapshot.location,
            "on_hand": snapshot.on_hand,
            "reserved": snapshot.reserved,
            "available": snapshot.available,
            "reason": reason,
            "source": source,
        },
    )


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
    return _snapshot(session, level)


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
            return _write_movement(
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
            level = stock_level(session, sku, get_location(session, location))
            # A no-op UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) first,
            # so the count we read cannot change before we write the difference.
            session.execute(
                update(StockLevel)
                .execution_options(synchronize_session=False)
                .where(StockLevel.id == level.id)
                .values(on_hand=StockLevel.on_hand)
            )
            session.refresh(level)
            if quantity < level.reserved:
                raise OutOfStock(sku_code, level.reserved, quantity)
            delta = quantity - level.on_hand
            if delta == 0:
                return _snapshot(session, level)
            level.on_hand = quantity
            session.flush()
            return _write_movement(
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


def _after_key_race(idempotency_key: str | None, exc: IntegrityError) -> StockSnapshot:
    """A concurrent call with the same key won; return what it left."""
    session = current_session()
    previous = _replayed(session, idempotency_key)
    if previous is None:
        raise exc
    return _snapshot_of_movement(session, previous)


def reserve_stock(
    session: Session,
    sku: Sku,
    quantity: int,
    *,
    order_id: int | None,
    expires_at: datetime | None,
    key: str,
    source: str,
    reference: str,
    location: Location | None = None,
) -> Reservation:
    """Hold ``quantity`` of ``sku`` inside the caller's transaction, or raise ``OutOfStock``."""
    location_code = location.code if location is not None else config_value("DEFAULT_LOCATION")
    # One round trip: the conditional UPDATE finds the level by SKU and location code and
    # returns the new figures. No row means no level, no location or not enough stock.
    # "fetch" keeps a level already loaded in this session in step, at no extra statement
    # (the matched ids come back through RETURNING).
    held = session.execute(
        update(StockLevel)
        .execution_options(synchronize_session="fetch")
        .where(
            StockLevel.sku_id == sku.id,
            StockLevel.location_id
            == select(Location.id).where(Location.code == location_code).scalar_subquery(),
            StockLevel.on_hand - StockLevel.reserved >= quantity,
        )
        .values(reserved=StockLevel.reserved + quantity)
        .returning(StockLevel.location_id, StockLevel.on_hand, StockLevel.reserved)
    ).first()
    if held is None:
        level = stock_level(session, sku, location or get_location(session, location_code))
        session.refresh(level)
        raise OutOfStock(sku.code, quantity, level.available)
    location_id, on_hand, reserved = held
    reservation = Reservation(
        sku_id=sku.id,
        location_id=location_id,
        order_id=order_id,
        quantity=quantity,
        status="active",
        expires_at=expires_at,
        idempotency_key=key,
    )
    session.add(reservation)
    session.add(
        StockMovement(
            sku_id=sku.id,
            location_id=location_id,
            on_hand_delta=0,
            reserved_delta=quantity,
            reason="reservation",
            source=source,
            reference=reference,
            idempotency_key=f"reserve:{key}",
        )
    )
    snapshot = StockSnapshot(sku.code, location_code, on_hand, reserved)
    _stock_event(session, snapshot, reason="reservation", source=source)
    return reservation


def close_reservation(session: Session, reservation: Reservation, outcome: str) -> bool:
    """End an active reservation inside the caller's transaction.

    ``outcome`` is ``released`` or ``expired`` (stock goes back) or ``committed`` (the goods
    left: on hand and reserved both drop). Returns False, changing nothing, when the
    reservation was no longer active: each reservation is closed exactly once.
    """
    if outcome not in ("released", "expired", "committed"):
        raise ValueError(f"unknown reservation outcome {outcome!r}")
    closed = session.execute(
        update(Reservation)
        .execution_options(synchronize_session=False)
        .where(Reservation.id == reservation.id, Reservation.status == "active")
        .values(status=outcome)
    ).rowcount  # type: ignore[attr-defined]
    if closed != 1:
        return False
    quantity = reservation.quantity
    on_hand_delta = -quantity if outcome == "committed" else 0
    session.execute(
        update(StockLevel)
        .execution_options(synchronize_session=False)
        .where(
            StockLevel.sku_id == reservation.sku_id,
            StockLevel.location_id == reservation.location_id,
        )
        .values(reserved=StockLevel.reserved - quantity, on_hand=StockLevel.on_hand + on_hand_delta)
    )
    level = session.scalar(
        select(StockLevel).where(
            StockLevel.sku_id == reservation.sku_id,
            StockLevel.location_id == reservation.location_id,
        )
    )
    assert level is not None
    reason = {"released": "release", "expired": "expiry", "committed": "shipment"}[outcome]
    _write_movement(
        session,
        level,
        on_hand_delta=on_hand_delta,
        reserved_delta=-quantity,
        reason=reason,
        source="ledger",
        reference=f"reservation:{reservation.id}",
        idempotency_key=f"close:{reservation.id}",
    )
    session.refresh(reservation)
    return True


def commit_part(session: Session, reservation: Reservation, quantity: int, *, key: str) -> None:
    """Ship ``quantity`` of a held reservation inside the caller's transaction.

    All of it closes the reservation as committed; less shrinks it and keeps the rest held.
    """
    if quantity == reservation.quantity:
        if not close_reservation(session, reservation, "committed"):
            raise ValidationError(f"reservation {reservation.id} is no longer held")
        return
    shrunk = session.execute(
        update(Reservation)
        .execution_options(synchronize_session=False)
        .where(
            Reservation.id == reservation.id,
            Reservation.status == "active",
            Reservation.quantity > quantity,
        )
        .values(quantity=Reservation.quantity - quantity)
    ).rowcount  # type: ignore[attr-defined]
    if shrunk != 1:
        raise ValidationError(f"reservation {reservation.id} does not hold {quantity} units")
    session.execute(
        update(StockLevel)
        .execution_options(synchronize_session=False)
        .where(
            StockLevel.sku_id == reservation.sku_id,
            StockLevel.location_id == reservation.location_id,
        )
        .values(reserved=StockLevel.reserved - quantity, on_hand=StockLevel.on_hand - quantity)
    )
    level = session.scalar(
        select(StockLevel).where(
            StockLevel.sku_id == reservation.sku_id,
            StockLevel.location_id == reservation.location_id,
        )
    )
    assert level is not None
    _write_movement(
        session,
        level,
        on_hand_delta=-quantity,
        reserved_delta=-quantity,
        reason="shipment",
        source="ledger",
        reference=f"reservation:{reservation.id}",
        idempotency_key=key,
    )
    session.refresh(reservation)


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
