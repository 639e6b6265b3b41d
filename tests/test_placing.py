"""Placing an order writes exactly the same rows on SQLite (step by step) and PostgreSQL
(one statement): the order, its lines, reservations, movements, first event and outbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

pytestmark = pytest.mark.services_only

ADDRESS = {"name": "Li Lei", "phone": "13800000000", "street": "1 Garden Road"}


def last_events(app: Any, after: int) -> list[tuple[str, dict[str, Any], str, int]]:
    session = get_state(app).session
    return [
        (e.topic, e.payload, e.status, e.attempts)
        for e in session.scalars(
            select(OutboxEvent).where(OutboxEvent.id > after).order_by(OutboxEvent.id)
        )
    ]


@contextmanager
def statements_sent(engine: Any) -> Iterator[list[str]]:
    """The statements ``engine`` sends inside the block, as they go."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


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


def test_a_statement_listener_sees_every_statement_of_a_placing(app, shirt):
    engine = get_state(app).get_engine()
    with statements_sent(engine) as seen:
        order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 2}])
    if engine.dialect.name == "postgresql":  # the one statement of placing_fast, no lookup
        assert len(seen) == 1 and seen[0].startswith("WITH wanted AS \n(SELECT s.id AS sku_id")
    else:  # the lookup, the hold, then the INSERTs, table by table
        assert seen[0].startswith("SELECT koudai_channel.kind")
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


# -- PostgreSQL: one statement without a lookup ------------------------------------------------


FIGURES = ("number", "on_hand", "reserved", "available")


def _rows_of(app: Any, order_id: int, events_in: tuple[int, int]) -> dict[str, Any]:
    """What one placed order wrote, without ids, numbers, times and stock figures (those of
    the first order and the second differ): to compare two orders."""
    session = get_state(app).session
    session.expire_all()
    order = session.get(Order, order_id)
    assert order is not None
    lines = session.scalars(
        select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id)
    ).all()
    holds = session.scalars(
        select(Reservation).where(Reservation.order_id == order_id).order_by(Reservation.id)
    ).all()
    events = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.id > events_in[0], OutboxEvent.id <= events_in[1])
        .order_by(OutboxEvent.id)
    ).all()
    reference = f"order:{order.number}"
    movements = session.scalars(
        select(StockMovement).where(StockMovement.reference == reference).order_by(StockMovement.id)
    ).all()

    def payload(event: OutboxEvent) -> dict[str, Any]:
        return {k: v for k, v in event.payload.items() if k not in FIGURES}

    return {
        "order": (order.status, order.channel, order.subtotal, order.discount, order.total),
        "customer": order.customer_id,
        "lines": [(x.sku_code, x.title, x.variant, x.unit_price, x.quantity) for x in lines],
        "holds": [
            (h.sku_id, h.quantity, h.status, h.idempotency_key.split(":")[-1]) for h in holds
        ],
        "movements": [(m.sku_id, m.on_hand_delta, m.reserved_delta, m.reason) for m in movements],
        "events": [(e.topic, payload(e), e.status) for e in events],
    }


def _place_both_ways(app: Any, monkeypatch: pytest.MonkeyPatch, **ask: Any) -> list[Any]:
    """The same order placed by the one statement and then by lookup and write."""
    from koudai_flask.services import placing_fast

    before = max_event_id(app)
    first = orders.place(**ask)
    between = max_event_id(app)
    with monkeypatch.context() as patch:
        patch.setattr(placing_fast, "place", lambda *args, **kwargs: None)
        second = orders.place(**ask)
    after = max_event_id(app)
    return [_rows_of(app, first.id, (before, between)), _rows_of(app, second.id, (between, after))]


def test_both_ways_of_placing_write_the_same_rows(app, shirt, monkeypatch):
    from koudai_flask.services import channels, customers

    catalog.create_product(
        title="Plain mug",
        skus=[
            {"code": "MUG", "price": 2500, "stock": 10},  # no attributes: no variant
            {"code": "MUG-E", "price": 2600, "attributes": {"glaze": ""}, "stock": 10},
        ],
    )
    catalog.create_product(
        title="Tee",
        options=["color", "size"],
        skus=[
            {"code": "TEE", "price": 5000, "attributes": {"color": "red", "size": "M"}, "stock": 9}
        ],
    )
    fast, slow = _place_both_ways(
        app,
        monkeypatch,
        channel="web",
        lines=[
            {"sku": "TEE", "quantity": 2},
            {"sku": "MUG", "quantity": 1},
            {"sku": "MUG-E", "quantity": 1},
            {"sku": "SHIRT-W", "quantity": 1},
        ],
        shipping_fee=1000,
        address=ADDRESS,
    )
    assert fast == slow
    assert fast["lines"] == [
        ("SHIRT-W", "Oxford shirt", "white", 12900, 1),
        ("MUG", "Plain mug", "", 2500, 1),
        ("MUG-E", "Plain mug", "MUG-E", 2600, 1),
        ("TEE", "Tee", "red / M", 5000, 2),
    ]
    assert fast["order"] == ("pending_payment", "web", 28000, 0, 29000)
    # The first order's stock events carry the levels after its hold.
    assert inventory.available("TEE") == 9 - 2 - 2
    tee = [
        {key: e.payload[key] for key in FIGURES[1:]}
        for e in get_state(app).session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "stock.changed").order_by(OutboxEvent.id)
        )
        if e.payload["sku"] == "TEE"
    ]
    assert tee[-2:] == [  # after the stock the product was created with
        {"on_hand": 9, "reserved": 2, "available": 7},
        {"on_hand": 9, "reserved": 4, "available": 5},
    ]

    # Another channel's order with its own prices, for a customer given by id.
    channels.create("weibo", "wb-shop", settings={})
    buyer = customers.for_user("u-77", name="Han Meimei")
    fast, slow = _place_both_ways(
        app,
        monkeypatch,
        channel="wb-shop",
        lines=[{"sku": "TEE", "quantity": 1, "unit_price": 4500}, {"sku": "MUG", "quantity": 1}],
        customer=buyer.id,
    )
    assert fast == slow
    assert [line[3] for line in fast["lines"]] == [2500, 4500]
    assert (fast["order"][2], fast["customer"]) == (7000, buyer.id)
    assert_ledger_consistent(get_state(app).session)


def test_both_ways_mark_the_listings_of_a_pushing_channel(app, shirt, monkeypatch):
    from koudai_flask.models import ChannelListing
    from koudai_flask.services import channels

    shop = channels.create("taobao", "tb-main", settings={})
    channels.link("tb-main", "SHIRT-W", external_item_id="1001", external_sku_id="2001")
    fast, slow = _place_both_ways(
        app, monkeypatch, channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}]
    )
    assert fast == slow
    assert ("channel.push_due", {"skus": ["SHIRT-W"], "channels": [shop.id]}) in [
        (topic, payload) for topic, payload, _ in fast["events"]
    ]
    listing = get_state(app).session.scalars(select(ChannelListing)).one()
    assert listing.dirty_since is not None and listing.push_version == 2


def test_what_the_one_statement_refuses_the_lookup_explains(app, shirt):
    from koudai_flask.errors import ValidationError
    from koudai_flask.services import channels

    first = orders.place(
        channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}], idempotency_key="k-1"
    )
    again = orders.place(
        channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}], idempotency_key="k-1"
    )
    assert again.id == first.id
    with pytest.raises(ValidationError, match="unit_price"):
        orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1, "unit_price": 1}])
    with pytest.raises(NotFound, match="unknown customer"):
        orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}], customer=999)
    channels.create("weibo", "wb-shop", settings={})
    one = orders.place(
        channel="wb-shop", lines=[{"sku": "SHIRT-B", "quantity": 1}], external_id="E1"
    )
    two = orders.place(
        channel="wb-shop", lines=[{"sku": "SHIRT-B", "quantity": 1}], external_id="E1"
    )
    assert one.id == two.id
    catalog.archive_product(shirt.id)  # its SKUs are no longer on sale
    with pytest.raises(ValidationError, match="not on sale"):
        orders.place(channel="web", lines=[{"sku": "SHIRT-B", "quantity": 1}])
    session = get_state(app).session
    assert session.scalar(select(func.count()).select_from(Order)) == 2
    assert inventory.available("SHIRT-W") == 9 and inventory.available("SHIRT-B") == 9
    assert_ledger_consistent(session)


def test_an_order_alone_commits_by_itself_and_a_callers_rolls_back_with_it(app, shirt):
    from koudai_flask.services.transaction import unit_of_work

    engine = get_state(app).get_engine()
    autocommit: list[bool] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "koudai_order" in statement:
            autocommit.append(bool(getattr(conn.connection.dbapi_connection, "autocommit", False)))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
        with pytest.raises(RuntimeError), unit_of_work():
            orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 2}])
            raise RuntimeError("the caller fails after placing")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # On PostgreSQL the lone order is one statement in autocommit; inside the caller's
    # transaction it is not, so it went with the caller's rollback.
    if engine.dialect.name == "postgresql":
        assert autocommit == [True, False]
    else:
        assert not any(autocommit)
    session = get_state(app).session
    assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert inventory.available("SHIRT-W") == 9
    assert_ledger_consistent(session)
    # The pooled connection went back out of autocommit: the next transaction is a real one.
    with engine.connect() as connection:
        assert not getattr(connection.connection.dbapi_connection, "autocommit", False)


def test_another_postgresql_driver_places_in_one_transaction(app, shirt, monkeypatch):
    """A driver other than psycopg gets the same statement between BEGIN and COMMIT."""
    engine = get_state(app).get_engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("the one statement is PostgreSQL's")
    monkeypatch.setattr(engine.dialect, "driver", "another")
    seen: list[tuple[str, bool]] = []

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        autocommit = bool(getattr(conn.connection.dbapi_connection, "autocommit", False))
        seen.append((statement.split(" ", 1)[0], autocommit))

    commits: list[Any] = []
    committed = commits.append
    event.listen(engine, "before_cursor_execute", watch)
    event.listen(engine, "commit", committed)
    try:
        order = orders.place(channel="web", lines=[{"sku": "SHIRT-B", "quantity": 2}])
    finally:
        event.remove(engine, "before_cursor_execute", watch)
        event.remove(engine, "commit", committed)
    assert seen == [("WITH", False)]
    assert len(commits) == 1  # its own transaction, committed
    assert (order.subtotal, order.total) == (2 * 13900, 2 * 13900)
    assert inventory.available("SHIRT-B") == 8
    assert_ledger_consistent(get_state(app).session)


def test_a_short_line_is_refused_at_once_and_other_faults_still_come_first(app, shirt):
    from koudai_flask.services import channels

    engine = get_state(app).get_engine()
    with statements_sent(engine) as seen, pytest.raises(OutOfStock) as info:
        orders.place(
            channel="web",
            lines=[{"sku": "SHIRT-B", "quantity": 11}, {"sku": "SHIRT-W", "quantity": 12}],
        )
    assert (info.value.sku, info.value.requested, info.value.available) == ("SHIRT-W", 12, 10)
    if engine.dialect.name == "postgresql":
        assert len(seen) == 1  # the one statement said which line was short
    # An unknown SKU, a switched-off channel or an unknown customer is named before the stock.
    short = {"sku": "SHIRT-W", "quantity": 11}
    with pytest.raises(NotFound, match="unknown SKU 'NOPE'"):
        orders.place(channel="web", lines=[short, {"sku": "NOPE", "quantity": 1}])
    with pytest.raises(NotFound, match="unknown customer"):
        orders.place(channel="web", lines=[short], customer=999)
    channels.create("weibo", "wb-off", settings={})
    channels.set_active("wb-off", False)
    with pytest.raises(NotFound, match="unknown channel 'wb-off'"):
        orders.place(channel="wb-off", lines=[short])
    session = get_state(app).session
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert inventory.available("SHIRT-W") == 10 and inventory.available("SHIRT-B") == 10
    assert_ledger_consistent(session)
