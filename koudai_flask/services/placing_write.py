"""Writing a placed order's rows: its stock holds, the order, lines, events and outbox rows.

``placing.place_in`` decides what to write and calls one of the two ways here: on PostgreSQL
the one statement of ``placing_sql``, run on the driver's cursor (``direct``); elsewhere one
conditional UPDATE per SKU and one INSERT per table. Both write the same rows (the tests run
both) and return the new order's id with the ids of its outbox events still to dispatch.
The order row itself (``order_row``), the parameters both forms of the statement take, the
reading of its answer and the returned ``Order`` (``persistent``) serve ``placing_fast`` too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, NoReturn, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict

from koudai_flask.models import (
    Order,
    OrderEvent,
    OrderLine,
    OutboxEvent,
    Reservation,
    StockLevel,
    StockMovement,
)
from koudai_flask.services import direct, ledger, outbox, placing_sql
from koudai_flask.services.placing_sql import ORDER, ORDER_COLUMNS
from koudai_flask.services.transaction import insert_linked

_ORDER_LINE = cast(Table, OrderLine.__table__)
_ORDER_EVENT = cast(Table, OrderEvent.__table__)
_RESERVATION = cast(Table, Reservation.__table__)
_MOVEMENT = cast(Table, StockMovement.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_LEVEL = cast(Table, StockLevel.__table__)


def order_reference(number: str) -> str:
    """How the ledger names an order: its movements' reference, and the start of its
    reservations' idempotency keys (``order:<number>:<SKU code>``)."""
    return f"order:{number}"


def row_payload(order: Mapping[str, Any], previous: str | None) -> dict[str, Any]:
    """The payload of an ``order.*`` outbox event: who the order is and where it stands."""
    return {
        "number": order["number"],
        "channel": order["channel"],
        "external_id": order["external_id"],
        "status": order["status"],
        "previous_status": previous,
        "total": order["total"],
        "customer_id": order["customer_id"],
    }


@dataclass(frozen=True)
class Line:
    """One SKU of an order being placed, with the figures its line row snapshots.

    Its fields are the keys of the ``lines`` JSON array that ``placing_sql`` reads.
    """

    sku_id: int
    sku_code: str
    title: str
    variant: str
    unit_price: int
    quantity: int
    hold_key: str  # the reservation's idempotency key


@dataclass(frozen=True)
class Placing:
    """An order being placed: its ``koudai_order`` row but the id, and what writing it needs."""

    order: dict[str, Any]
    lines: list[Line]  # in SKU id order
    location_id: int | None
    location_code: str
    expires_at: datetime
    actor: str

    @property
    def now(self) -> datetime:
        return cast(datetime, self.order["created_at"])

    @property
    def reference(self) -> str:
        return order_reference(self.order["number"])


def persistent(session: Session, order_id: int, row: dict[str, Any]) -> Order:
    """The order just written, as a persistent object of ``session``, without a read back.

    The instance is made the way the ORM makes a loaded row's (``new_instance``, then its
    dictionary filled), so no attribute event runs; its relationships load when first used.
    """
    order = cast(Order, Order.__mapper__.class_manager.new_instance())
    instance_dict(order).update(row, id=order_id)
    make_transient_to_detached(order)
    session.add(order)
    return order


def order_row(
    number: str,
    channel_name: str,
    data: dict[str, Any],
    idempotency_key: str | None,
    digest: str,
    customer_id: int | None,
    subtotal: int,
    discount: int,
    now: datetime,
) -> dict[str, Any]:
    """The new order's ``koudai_order`` row but its id, in the columns' order."""
    values = {
        "number": number,
        "status": "pending_payment",
        "channel": channel_name,
        "external_id": data["external_id"],
        "idempotency_key": idempotency_key,
        "request_digest": digest,
        "customer_id": customer_id,
        "address": data["address"],
        "note": data["note"],
        "subtotal": subtotal,
        "shipping_fee": data["shipping_fee"],
        "discount": discount,
        "total": subtotal + data["shipping_fee"] - discount,
        "paid_at": None,
        "payment_provider": None,
        "created_at": now,
        "updated_at": now,
    }
    return {column: values[column] for column in ORDER_COLUMNS}


def write_step_by_step(
    session: Session, connection: Connection, placing: Placing
) -> tuple[int, list[int]]:
    """Hold each line's stock, then insert the rows one table at a time."""
    order, now = placing.order, placing.now
    holds = ledger.hold_stock(
        session,
        connection,
        [(line.sku_id, line.sku_code, line.quantity) for line in placing.lines],
        location_code=placing.location_code,
    )
    reservations, movements, events = ledger.hold_rows(
        holds,
        key_prefix=placing.reference,
        expires_at=placing.expires_at,
        source=order["channel"],
        reference=placing.reference,
        now=now,
    )
    events.append(outbox.event_row("order.placed", row_payload(order, None), now))
    order_lines = [
        {
            "sku_id": line.sku_id,
            "sku_code": line.sku_code,
            "title": line.title,
            "variant": line.variant,
            "unit_price": line.unit_price,
            "quantity": line.quantity,
            "shipped_quantity": 0,
        }
        for line in placing.lines
    ]
    placed = {
        "from_status": None,
        "to_status": "pending_payment",
        "actor": placing.actor,
        "note": "",
        "created_at": now,
    }
    order_id, event_ids = insert_linked(
        connection,
        ORDER,
        order,
        [
            (_ORDER_LINE, order_lines),
            (_RESERVATION, reservations),
            (_MOVEMENT, movements),
            (_ORDER_EVENT, [placed]),
            (_OUTBOX, events),
        ],
    )
    pending = [
        id_ for id_, event in zip(event_ids, events, strict=True) if event["status"] == "pending"
    ]
    return order_id, pending


def write_in_one_statement(
    session: Session, connection: Connection, placing: Placing
) -> tuple[int, list[int]]:
    """``write_step_by_step`` as the one statement of ``placing_sql``: one round trip.

    When a line is short of stock the statement changes nothing, and ``OutOfStock`` names
    the first such line in SKU id order, as the step-by-step path does.
    """
    order = placing.order
    params = {
        "order": json.dumps(order, default=json_time),
        "lines": [vars(line) for line in placing.lines],
        "line_count": len(placing.lines),
        "at_location": placing.location_id,
        "placed_payload": row_payload(order, None),
        **statement_params(
            order,
            location_code=placing.location_code,
            expires_at=placing.expires_at,
            actor=placing.actor,
        ),
    }
    written = read_written(session, direct.rows(connection, placing_sql.statement(), params))
    if written is None:
        _refuse(session, connection, placing)
    return written.order_id, written.pending


def statement_params(
    order: dict[str, Any], *, location_code: str, expires_at: datetime, actor: str
) -> dict[str, Any]:
    """The parameters of ``placing_sql.statement`` that both of its forms take, for the
    ``order`` row being placed."""
    now = order["created_at"]
    return {
        "location_code": location_code,
        "source": order["channel"],
        "reference": order_reference(order["number"]),
        "actor": actor,
        "expires_at": expires_at,
        **event_status("stock", "stock.changed", now),
        **event_status("placed", "order.placed", now),
    }


def event_status(prefix: str, topic: str, now: datetime) -> dict[str, Any]:
    """An outbox event's status and done time: pending if anybody handles ``topic``."""
    dispatch = outbox.needs_dispatch(topic)
    return {
        f"{prefix}_status": "pending" if dispatch else "done",
        f"{prefix}_done_at": None if dispatch else now,
    }


class Written(NamedTuple):
    """What ``placing_sql.statement`` wrote: the order's id, the ids of its outbox events
    still to dispatch, and (``from_catalog``) the subtotal and total it summed."""

    order_id: int
    pending: list[int]
    subtotal: int | None
    total: int | None


def read_written(session: Session, rows: list[Any]) -> Written | None:
    """The statement's rows read, and a level this session holds kept in step; None when
    it wrote nothing."""
    order: tuple[int, int | None, int | None] | None = None
    pending = []
    for kind, row_id, status, first, second in rows:
        if kind == "order":
            order = (row_id, first, second)
        elif kind == "event" and status == "pending":
            pending.append(row_id)
        elif kind == "level":
            ledger.sync_loaded_level(session, row_id, first, second)
    if order is None:
        return None
    return Written(order[0], sorted(pending), order[1], order[2])


def json_time(value: Any) -> str:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    raise TypeError(f"cannot send {value!r} in a JSON row")


def _refuse(session: Session, connection: Connection, placing: Placing) -> NoReturn:
    """Raise ``OutOfStock`` for the first line (in SKU id order) that is short of stock."""
    available = dict(
        connection.execute(
            select(_LEVEL.c.sku_id, _LEVEL.c.on_hand - _LEVEL.c.reserved).where(
                _LEVEL.c.location_id == placing.location_id,
                _LEVEL.c.sku_id.in_([line.sku_id for line in placing.lines]),
            )
        ).all()
    )
    short = next(
        (line for line in placing.lines if available.get(line.sku_id, 0) < line.quantity),
        placing.lines[0],
    )
    ledger.refuse_hold(session, short.sku_id, short.quantity, placing.location_code)
