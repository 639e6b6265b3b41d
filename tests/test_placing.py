"""Placing an order writes exactly the same rows on SQLite (step by step) and PostgreSQL
(one statement): the order, its lines, reservations, movements, first event and outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, inspect, select
from sqlalchemy.exc import IntegrityError

from koudai_flask import Koudai
from koudai_flask.errors import NotFound, OutOfStock
from koudai_flask.extension import get_state
from koudai_flask.models import (
    Order,
    OrderEvent,
    OrderLine,
    OutboxEvent,
    Reservation,
    StockLevel,
    StockMovement,
)
from koudai_flask.services import catalog, inventory, orders, placing
from tests.helpers import assert_ledger_consistent

ADDRESS = {"name": "Li Lei", "phone": "13800000000", "street": "1 Garden Road"}


def last_events(app: Any, after: int) -> list[tuple[str, dict[str, Any], str, int]]:
    session = get_state(app).session
    return [
        (e.topic, e.payload, e.status, e.attempts)
        for e in session.scalars(
            select(OutboxEvent).where(OutboxEvent.id > after).order_by(OutboxEvent.id)
        )
    ]


def max_event_id(app: Any) -> int:
    ids = get_state(app).session.scalars(select(OutboxEvent.id)).all()
    return max(ids, default=0)


def test_place_writes_every_row(app, shirt):
    before = max_event_id(app)
    # Listed out of SKU id order, and one SKU twice: lines are merged and sorted by SKU id.
    order = orders.place(
        channel="web",
        lines=[
            {"sku": "SHIRT-B", "quantity": 1},
            {"sku": "SHIRT-W", "quantity": 1},
            {"sku": "SHIRT-W", "quantity": 1},
        ],
        address=ADDRESS,
        note="ring twice",
        shipping_fee=800,
        idempotency_key="rows-1",
    )
    number = order.number
    assert inspect(order).persistent
    assert (order.status, order.channel, order.subtotal, order.total) == (
        "pending_payment",
        "web",
        2 * 12900 + 13900,
        2 * 12900 + 13900 + 800,
    )

    session = get_state(app).session
    session.expire_all()
    stored = session.scalars(select(Order)).one()
    assert stored.id == order.id
    assert (stored.number, stored.idempotency_key, stored.note, stored.discount) == (
        number,
        "rows-1",
        "ring twice",
        0,
    )
    assert stored.address == {
        **ADDRESS,
        "province": "",
        "city": "",
        "district": "",
        "postcode": "",
    }
    assert (stored.paid_at, stored.payment_provider) == (None, None)
    placed_at = stored.created_at
    assert stored.updated_at == placed_at
    assert [
        (
            line.sku_code,
            line.title,
            line.variant,
            line.unit_price,
            line.quantity,
            line.shipped_quantity,
        )
        for line in stored.lines
    ] == [
        ("SHIRT-W", "Oxford shirt", "white", 12900, 2, 0),
        ("SHIRT-B", "Oxford shirt", "blue", 13900, 1, 0),
    ]
    reservations = session.scalars(select(Reservation).order_by(Reservation.id)).all()
    assert [
        (r.sku_id, r.order_id, r.quantity, r.status, r.idempotency_key, r.created_at)
        for r in reservations
    ] == [
        (1, order.id, 2, "active", f"order:{number}:SHIRT-W", placed_at),
        (2, order.id, 1, "active", f"order:{number}:SHIRT-B", placed_at),
    ]
    assert [r.expires_at - placed_at for r in reservations] == [timedelta(seconds=1800)] * 2
    movements = session.scalars(
        select(StockMovement)
        .where(StockMovement.reason == "reservation")
        .order_by(StockMovement.id)
    ).all()
    assert [
        (
            m.sku_id,
            m.on_hand_delta,
            m.reserved_delta,
            m.source,
            m.reference,
            m.idempotency_key,
            m.note,
            m.created_at,
        )
        for m in movements
    ] == [
        (1, 0, 2, "web", f"order:{number}", f"reserve:order:{number}:SHIRT-W", "", placed_at),
        (2, 0, 1, "web", f"order:{number}", f"reserve:order:{number}:SHIRT-B", "", placed_at),
    ]
    assert [
        (e.order_id, e.from_status, e.to_status, e.actor, e.note, e.created_at)
        for e in session.scalars(select(OrderEvent))
    ] == [(order.id, None, "pending_payment", "buyer", "", placed_at)]
    stock = {"location": "main", "reason": "reservation", "source": "web"}
    assert last_events(app, before) == [
        (
            "stock.changed",
            {"sku": "SHIRT-W", "on_hand": 10, "reserved": 2, "available": 8, **stock},
            "done",
            0,
        ),
        (
            "stock.changed",
            {"sku": "SHIRT-B", "on_hand": 10, "reserved": 1, "available": 9, **stock},
            "done",
            0,
        ),
        (
            "order.placed",
            {
                "number": number,
                "channel": "web",
                "external_id": None,
                "status": "pending_payment",
                "previous_status": None,
                "total": 2 * 12900 + 13900 + 800,
                "customer_id": None,
            },
            "done",
            0,
        ),
    ]
    events = session.scalars(select(OutboxEvent).where(OutboxEvent.id > before)).all()
    assert {(e.done_at, e.enqueued_at, e.last_error, e.created_at) for e in events} == {
        (placed_at, None, None, placed_at)
    }
    assert [(lvl.on_hand, lvl.reserved) for lvl in session.scalars(select(StockLevel))] == [
        (10, 2),
        (10, 1),
    ]
    assert_ledger_consistent(session)


def test_the_returned_order_loads_its_lines(app, shirt):
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-B", "quantity": 2}])
    assert [(line.sku_code, line.quantity) for line in order.lines] == [("SHIRT-B", 2)]
    assert get_state(app).session.get(Order, order.id) is order


def test_a_loaded_level_follows_the_hold(app, shirt):
    session = get_state(app).session
    level = session.scalars(select(StockLevel).where(StockLevel.sku_id == 1)).one()
    assert (level.on_hand, level.reserved) == (10, 0)
    orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 3}])
    assert (level.on_hand, level.reserved) == (10, 3)


def test_the_first_short_line_in_sku_order_is_named(app, shirt):
    with pytest.raises(OutOfStock) as info:
        orders.place(
            channel="web",
            lines=[{"sku": "SHIRT-B", "quantity": 11}, {"sku": "SHIRT-W", "quantity": 11}],
        )
    assert (info.value.sku, info.value.requested, info.value.available) == ("SHIRT-W", 11, 10)
    with pytest.raises(OutOfStock) as info:
        orders.place(
            channel="web",
            lines=[{"sku": "SHIRT-B", "quantity": 11}, {"sku": "SHIRT-W", "quantity": 1}],
        )
    assert (info.value.sku, info.value.requested, info.value.available) == ("SHIRT-B", 11, 10)
    session = get_state(app).session
    assert session.scalars(select(Order)).all() == []
    assert session.scalars(select(OrderLine)).all() == []
    assert inventory.available("SHIRT-W") == 10
    assert inventory.available("SHIRT-B") == 10
    assert_ledger_consistent(session)


def test_subscribed_events_are_written_pending_and_delivered_after_commit(app, shirt):
    seen: list[tuple[str, dict[str, Any]]] = []
    Koudai.subscribe(app, "stock.changed", lambda topic, payload: seen.append((topic, payload)))
    before = max_event_id(app)
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 4}])
    assert seen == [
        (
            "stock.changed",
            {
                "sku": "SHIRT-W",
                "location": "main",
                "on_hand": 10,
                "reserved": 4,
                "available": 6,
                "reason": "reservation",
                "source": "web",
            },
        )
    ]
    get_state(app).session.expire_all()
    # Delivered inline after the commit; order.placed has no subscriber and was done at once.
    assert [(topic, status) for topic, _, status, _ in last_events(app, before)] == [
        ("stock.changed", "done"),
        ("order.placed", "done"),
    ]
    assert order.status == "pending_payment"


def test_a_statement_listener_sees_both_statements_of_a_placing(app, shirt):
    engine = get_state(app).get_engine()
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 2}])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert seen[0].startswith("SELECT koudai_channel.kind")
    if engine.dialect.name == "postgresql":  # the one statement of placing_sql
        assert len(seen) == 2 and seen[1].startswith("WITH wanted AS")
    else:  # the hold, then the INSERTs, table by table
        heads = [statement.split(" (")[0].split(" SET")[0] for statement in seen[1:]]
        assert list(dict.fromkeys(heads)) == [
            "UPDATE koudai_stock_level",
            "INSERT INTO koudai_order",
            "INSERT INTO koudai_order_line",
            "INSERT INTO koudai_reservation",
            "INSERT INTO koudai_stock_movement",
            "INSERT INTO koudai_order_event",
            "INSERT INTO koudai_outbox_event",
        ]
    assert (order.status, order.subtotal) == ("pending_payment", 2 * 12900)
    assert inventory.available("SHIRT-W") == 8


def test_a_driver_error_in_the_write_is_sqlalchemy_s_and_changes_nothing(app, shirt, monkeypatch):
    first = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    session = get_state(app).session
    before = session.scalar(select(func.count()).select_from(StockMovement))
    # The next order gets the first one's number: koudai_order.number is unique.
    monkeypatch.setattr(placing, "new_number", lambda now: first.number)
    with pytest.raises(IntegrityError):
        orders.place(channel="web", lines=[{"sku": "SHIRT-B", "quantity": 1}])
    assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert session.scalar(select(func.count()).select_from(StockMovement)) == before
    assert inventory.available("SHIRT-B") == 10
    monkeypatch.undo()
    # The session's next transaction is a normal one.
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-B", "quantity": 3}])
    assert inventory.available("SHIRT-B") == 7
    assert session.get(Order, order.id) is order
    assert_ledger_consistent(session)


def test_orders_of_one_to_three_skus_each_read_their_skus(app, shirt):
    catalog.create_product(title="Socks", skus=[{"code": "SOCK-1", "price": 900, "stock": 5}])
    one = orders.place(channel="web", lines=[{"sku": "SOCK-1", "quantity": 1}])
    three = orders.place(
        channel="web",
        lines=[
            {"sku": "SOCK-1", "quantity": 2},
            {"sku": "SHIRT-B", "quantity": 1},
            {"sku": "SHIRT-W", "quantity": 1},
        ],
    )
    with pytest.raises(NotFound, match="unknown SKU 'NOPE'"):
        orders.place(
            channel="web",
            lines=[{"sku": "SHIRT-W", "quantity": 1}, {"sku": "NOPE", "quantity": 1}],
        )
    assert [(line.sku_code, line.quantity) for line in one.lines] == [("SOCK-1", 1)]
    assert [(line.sku_code, line.quantity) for line in three.lines] == [
        ("SHIRT-W", 1),
        ("SHIRT-B", 1),
        ("SOCK-1", 2),
    ]
    assert three.subtotal == 12900 + 13900 + 2 * 900
    assert inventory.available("SOCK-1") == 2
