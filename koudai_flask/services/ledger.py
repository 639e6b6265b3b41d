"""The ledger's building blocks: steps that run inside the caller's transaction.

``services.inventory`` wraps them into public calls, each one transaction; the order engine
and shipping use them inside theirs. Nothing here commits.

The lookups they share (a SKU, a location, a level and its snapshot) are
:mod:`koudai_flask.services.ledger_lookups`; their names are importable from here as well.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, cast

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from koudai_flask.config import config_value
from koudai_flask.errors import OutOfStock, ValidationError
from koudai_flask.models import Location, Reservation, Sku, StockLevel, StockMovement
from koudai_flask.services import outbox
from koudai_flask.services.ledger_lookups import (
    StockSnapshot,
    get_location,
    get_sku,
    read_snapshot,
    stock_level,
    stock_payload,
)

_LEVEL = cast(Table, StockLevel.__table__)
_LOCATION = cast(Table, Location.__table__)


def write_movement(
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
    snapshot = read_snapshot(session, level)
    stock_event(session, snapshot, reason=reason, source=source)
    return snapshot


def stock_event(session: Session, snapshot: StockSnapshot, *, reason: str, source: str) -> None:
    outbox.record(session, "stock.changed", stock_payload(snapshot, reason=reason, source=source))
    # The linked channels' listings are marked in this same transaction (services.stock_sync).
    from koudai_flask.services.stock_sync import mark_dirty_in

    mark_dirty_in(session, snapshot.sku)


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
    stock_event(session, snapshot, reason="reservation", source=source)
    return reservation


# -- holding an order's stock in Core statements -----------------------------------------------

# The conditional UPDATE of ``reserve_stock`` as one prepared Core statement: it finds the
# level by SKU id and location code, holds the quantity only if that much is available and
# returns the new figures. No row means no level, no location or not enough stock.
_HOLD = (
    update(_LEVEL)
    .where(
        _LEVEL.c.sku_id == bindparam("hold_sku_id"),
        _LEVEL.c.location_id
        == select(_LOCATION.c.id)
        .where(_LOCATION.c.code == bindparam("hold_location"))
        .scalar_subquery(),
        _LEVEL.c.on_hand - _LEVEL.c.reserved >= bindparam("hold_quantity"),
    )
    .values(reserved=_LEVEL.c.reserved + bindparam("hold_quantity"))
    .returning(_LEVEL.c.id, _LEVEL.c.location_id, _LEVEL.c.on_hand, _LEVEL.c.reserved)
)


@dataclass(frozen=True)
class Hold:
    """Stock held for one line of an order: what was taken and the level right after."""

    sku_id: int
    sku_code: str
    quantity: int
    location_id: int
    location_code: str
    on_hand: int
    reserved: int


def hold_stock(
    session: Session,
    connection: Connection,
    wanted: Sequence[tuple[int, str, int]],
    *,
    location_code: str | None = None,
) -> list[Hold]:
    """Hold ``(sku_id, sku_code, quantity)`` for each line, in the given order, or raise.

    Callers pass the lines sorted by SKU id, so that two orders of the same SKUs lock their
    levels in the same order and never deadlock. ``OutOfStock`` leaves the lines already held
    to the caller's rollback, as ``reserve_stock`` does.
    """
    code = location_code or config_value("DEFAULT_LOCATION")
    holds = []
    for sku_id, sku_code, quantity in wanted:
        row = connection.execute(
            _HOLD, {"hold_sku_id": sku_id, "hold_location": code, "hold_quantity": quantity}
        ).first()
        if row is None:
            refuse_hold(session, sku_id, quantity, code)
        level_id, location_id, on_hand, reserved = row
        sync_loaded_level(session, level_id, on_hand, reserved)
        holds.append(Hold(sku_id, sku_code, quantity, location_id, code, on_hand, reserved))
    return holds


def sync_loaded_level(session: Session, level_id: int, on_hand: int, reserved: int) -> None:
    """Keep a level already loaded in this session in step with a Core UPDATE of it.

    The same as the "fetch" synchronisation of an ORM UPDATE: only an object the session
    holds is touched, and nothing is read.
    """
    loaded = session.identity_map.get(session.identity_key(StockLevel, level_id))
    if loaded is not None:
        set_committed_value(loaded, "on_hand", on_hand)
        set_committed_value(loaded, "reserved", reserved)


def refuse_hold(session: Session, sku_id: int, quantity: int, location_code: str) -> NoReturn:
    """Raise ``OutOfStock`` with what is available now (or ``NotFound`` for the location)."""
    sku = session.get(Sku, sku_id)
    assert sku is not None
    level = stock_level(session, sku, get_location(session, location_code))
    session.refresh(level)
    raise OutOfStock(sku.code, quantity, level.available)


def hold_rows(
    holds: Sequence[Hold],
    *,
    key_prefix: str,
    expires_at: datetime | None,
    source: str,
    reference: str,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The reservation, movement and ``stock.changed`` event rows of ``holds``.

    They are the rows ``reserve_stock`` writes, for a caller that inserts them in bulk; the
    reservations lack their ``order_id``, which the caller fills in.
    """
    reservations = []
    movements = []
    events = []
    for hold in holds:
        key = f"{key_prefix}:{hold.sku_code}"
        reservations.append(
            {
                "sku_id": hold.sku_id,
                "location_id": hold.location_id,
                "quantity": hold.quantity,
                "status": "active",
                "expires_at": expires_at,
                "idempotency_key": key,
                "created_at": now,
            }
        )
        movements.append(
            {
                "sku_id": hold.sku_id,
                "location_id": hold.location_id,
                "on_hand_delta": 0,
                "reserved_delta": hold.quantity,
                "reason": "reservation",
                "source": source,
                "reference": reference,
                "idempotency_key": f"reserve:{key}",
                "note": "",
                "created_at": now,
            }
        )
        snapshot = StockSnapshot(hold.sku_code, hold.location_code, hold.on_hand, hold.reserved)
        events.append(
            outbox.event_row(
                "stock.changed", stock_payload(snapshot, reason="reservation", source=source), now
            )
        )
    return reservations, movements, events


# A reservation's outcome, as the reason of the movement it writes.
_MOVEMENT_REASONS = {"released": "release", "expired": "expiry", "committed": "shipment"}


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
    reason = _MOVEMENT_REASONS[outcome]
    write_movement(
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


def close_part(
    session: Session, reservation: Reservation, quantity: int, outcome: str, *, key: str
) -> None:
    """End ``quantity`` of a held reservation as ``outcome`` (``committed``: the goods left;
    ``released``: back on the shelf), inside the caller's transaction. All of it closes the
    reservation; less shrinks it and keeps the rest held."""
    if quantity == reservation.quantity:
        if not close_reservation(session, reservation, outcome):
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
    write_movement(
        session,
        level,
        on_hand_delta=on_hand_delta,
        reserved_delta=-quantity,
        reason=_MOVEMENT_REASONS[outcome],
        source="ledger",
        reference=f"reservation:{reservation.id}",
        idempotency_key=key,
    )
    session.refresh(reservation)


__all__ = [
    "Hold",
    "StockSnapshot",
    "close_part",
    "close_reservation",
    "get_location",
    "get_sku",
    "hold_rows",
    "hold_stock",
    "read_snapshot",
    "refuse_hold",
    "reserve_stock",
    "stock_event",
    "stock_level",
    "stock_payload",
    "sync_loaded_level",
    "write_movement",
]
