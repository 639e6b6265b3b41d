"""The PostgreSQL statement that places an order in one round trip.

``placing`` sends it when the database is PostgreSQL. Data-modifying CTEs lock the lines'
stock levels in SKU id order, hold every line only if every line has the stock, and insert
the order, its lines, reservations, movements, first event and outbox events only if all
were held; otherwise the statement changes nothing. The order comes as one JSON object and
the lines as one JSON array, and constants are written inline, so the text is the same for
every order: psycopg and the server parse and plan it once per connection. psycopg keeps
its parsing of statements of up to 4096 characters and 50 parameters only, hence the plain
column names and inline constants; the text is just under that (a longer one still works,
parsed again on every call).

It writes the rows that ``placing`` writes step by step on other databases (the tests run
both): the columns here follow ``ledger.hold_rows``, ``outbox.event_row`` and
``ledger.stock_payload``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    CompoundSelect,
    FromClause,
    Integer,
    Table,
    Text,
    bindparam,
    column,
    func,
    insert,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.types import TypeEngine

from koudai_flask.models import (
    Order,
    OrderEvent,
    OrderLine,
    OutboxEvent,
    Reservation,
    StockLevel,
    StockMovement,
)
from koudai_flask.models.base import UTCDateTime

ORDER = cast(Table, Order.__table__)
# Every column of an order row but its id, in the order of the insert.
ORDER_COLUMNS = tuple(c.key for c in ORDER.columns if c.key != "id")

_LINE = cast(Table, OrderLine.__table__)
_EVENT = cast(Table, OrderEvent.__table__)
_RESERVATION = cast(Table, Reservation.__table__)
_MOVEMENT = cast(Table, StockMovement.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_LEVEL = cast(Table, StockLevel.__table__)


def _const(value: str | int, type_: TypeEngine[Any]) -> ColumnElement[Any]:
    """A constant written into the text rather than sent as one more parameter."""
    if isinstance(value, str):
        assert "'" not in value
        return literal_column(f"'{value}'", type_)
    return literal_column(str(int(value)), type_)


def _null(sql_type: str) -> ColumnElement[Any]:
    return literal_column(f"NULL::{sql_type}")


def _ref(name: str) -> ColumnElement[Any]:
    """A column of a CTE by its plain name: SQLAlchemy would add an ``AS`` label to each."""
    return literal_column(name)


def _json(name: str) -> ColumnElement[Any]:
    return sql_cast(bindparam(name, type_=Text), JSON)


def _insert(table: Table, values: dict[str, Any], from_: FromClause) -> Any:
    """``INSERT INTO table (keys) SELECT values FROM from_``, as a CTE."""
    rows = select(*values.values()).select_from(from_)
    statement = insert(table).from_select(list(values), rows, include_defaults=False)
    return statement.cte(table.name.removeprefix("koudai_"))


@lru_cache(maxsize=1)
def statement() -> CompoundSelect:
    """The statement; its rows are ``(kind, id, status, on_hand, reserved)``.

    ``("order", id)``: the order was placed. ``("event", id, status)``: an outbox event.
    ``("level", id, None, on_hand, reserved)``: a level after the hold. No row at all: some
    line was short of stock, and nothing changed.
    """
    lines = (
        func.json_to_recordset(bindparam("lines", type_=JSON))
        .table_valued(
            column("sku_id", Integer),
            column("sku_code", Text),
            column("title", Text),
            column("variant", Text),
            column("unit_price", Integer),
            column("quantity", Integer),
            column("hold_key", Text),
        )
        .render_derived(name="w", with_types=True)
    )
    wanted = select(*lines.c).cte("wanted")
    # Not "location_id": an UPDATE would take a parameter named after a column as a new value.
    location_id = bindparam("at_location", type_=Integer)
    line_count = bindparam("line_count", type_=Integer)
    source = bindparam("source", type_=Text)
    level = _LEVEL

    # FOR UPDATE after ORDER BY takes the row locks in SKU id order: two orders of the same
    # SKUs never deadlock, as with one UPDATE per line in that order.
    lock = level.alias("l")
    locked = (
        select(_ref("l.sku_id"), _ref("l.on_hand"), _ref("l.reserved"))
        .select_from(lock)
        .where(lock.c.location_id == location_id, lock.c.sku_id.in_(select(wanted.c.sku_id)))
        .order_by(lock.c.sku_id)
        .with_for_update()
        .cte("locked")
    )
    enough = (
        select(_ref("count(*)"))
        .select_from(locked.join(wanted, _ref("locked.sku_id = wanted.sku_id")))
        .where(_ref("locked.on_hand - locked.reserved >= wanted.quantity"))
        .scalar_subquery()
    )
    # ``enough`` has no column of the updated row, so it is checked once, before any row is
    # updated; every level is locked by then. The row condition is the conditional UPDATE
    # of ``ledger.reserve_stock``. (Unqualified names are the level's: ``wanted`` has none
    # of them.)
    held = (
        update(level)
        .where(
            _ref("location_id") == location_id,
            level.c.sku_id == wanted.c.sku_id,
            _ref("on_hand - reserved >= wanted.quantity"),
            enough == line_count,
        )
        .values(reserved=_ref("reserved + wanted.quantity"))
        .returning(_ref("id"), level.c.sku_id, _ref("on_hand"), _ref("reserved"))
        .cte("held")
    )
    all_held = select(_ref("count(*)")).select_from(held).scalar_subquery() == line_count
    order = func.json_populate_record(
        literal_column(f"NULL::{ORDER.name}"), _json("order")
    ).table_valued(*ORDER_COLUMNS, name="o")
    placed = (
        insert(ORDER)
        .from_select(
            list(ORDER_COLUMNS),
            # Plain "o.number" columns, without labels: a shorter text.
            select(*(literal_column(f"o.{name}") for name in ORDER_COLUMNS))
            .select_from(order)
            .where(all_held),
            include_defaults=False,
        )
        .returning(ORDER.c.id, ORDER.c.created_at)
        .cte("placed")
    )
    order_id, now = _ref("placed.id"), _ref("placed.created_at")

    per_line = placed.join(wanted, true())
    order_lines = _insert(
        _LINE,
        {
            "order_id": order_id,
            "sku_id": _ref("wanted.sku_id"),
            "sku_code": _ref("wanted.sku_code"),
            "title": _ref("wanted.title"),
            "variant": _ref("wanted.variant"),
            "unit_price": _ref("wanted.unit_price"),
            "quantity": _ref("wanted.quantity"),
            "shipped_quantity": _const(0, Integer()),
        },
        per_line,
    )
    reservations = _insert(
        _RESERVATION,
        {
            "sku_id": _ref("wanted.sku_id"),
            "location_id": location_id,
            "order_id": order_id,
            "quantity": _ref("wanted.quantity"),
            "status": _const("active", Text()),
            "expires_at": bindparam("expires_at", type_=UTCDateTime()),
            "idempotency_key": _ref("wanted.hold_key"),
            "created_at": now,
        },
        per_line,
    )
    movements = _insert(
        _MOVEMENT,
        {
            "sku_id": _ref("wanted.sku_id"),
            "location_id": location_id,
            "on_hand_delta": _const(0, Integer()),
            "reserved_delta": _ref("wanted.quantity"),
            "reason": _const("reservation", Text()),
            "source": source,
            "reference": bindparam("reference", type_=Text),
            "idempotency_key": _const("reserve:", Text()) + _ref("wanted.hold_key"),
            "note": _const("", Text()),
            "created_at": now,
        },
        per_line,
    )
    first_event = _insert(
        _EVENT,
        {
            "order_id": order_id,
            "from_status": _null("text"),
            "to_status": _const("pending_payment", Text()),
            "actor": bindparam("actor", type_=Text),
            "note": _const("", Text()),
            "created_at": now,
        },
        placed,
    )

    # ledger.stock_payload, key for key and in its order, with the figures after the hold.
    stock_payload = func.json_build_object(
        _const("sku", Text()),
        _ref("wanted.sku_code"),
        _const("location", Text()),
        bindparam("location_code", type_=Text),
        _const("on_hand", Text()),
        _ref("held.on_hand"),
        _const("reserved", Text()),
        _ref("held.reserved"),
        _const("available", Text()),
        _ref("held.on_hand - held.reserved"),
        _const("reason", Text()),
        _const("reservation", Text()),
        _const("source", Text()),
        source,
    )

    def event(topic: str, payload: ColumnElement[Any], prefix: str) -> list[ColumnElement[Any]]:
        # The columns of outbox.event_row; the status is decided by the caller.
        return [
            _const(topic, Text()),
            payload,
            bindparam(f"{prefix}_status", type_=Text),
            _const(0, Integer()),
            _null("timestamptz"),
            bindparam(f"{prefix}_done_at", type_=UTCDateTime()),
            _null("text"),
            now,
        ]

    stock_events = select(*event("stock.changed", stock_payload, "stock")).select_from(
        per_line.join(held, held.c.sku_id == wanted.c.sku_id)
    )
    placed_event = select(
        *event("order.placed", bindparam("placed_payload", type_=JSON), "placed")
    ).select_from(placed)
    events = (
        insert(_OUTBOX)
        .from_select(
            ["topic", "payload", "status", "attempts", "enqueued_at", "done_at", "last_error"]
            + ["created_at"],
            union_all(stock_events, placed_event),
            include_defaults=False,
        )
        .returning(_OUTBOX.c.id, _OUTBOX.c.status)
        .cte("events")
    )

    nothing: ColumnElement[Any] = literal_column("NULL")
    # The UNION types its columns pair by pair from the left: the typed branch goes first.
    return union_all(
        select(_const("level", Text()), held.c.id, nothing, held.c.on_hand, held.c.reserved),
        select(_const("order", Text()), placed.c.id, nothing, nothing, nothing),
        select(_const("event", Text()), events.c.id, events.c.status, nothing, nothing),
    ).add_cte(order_lines, reservations, movements, first_event)
