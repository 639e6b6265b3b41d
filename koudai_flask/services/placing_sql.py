"""The PostgreSQL statement that places an order in one round trip.

``placing`` sends it when the database is PostgreSQL, in one of two forms. Data-modifying
CTEs lock the lines' stock levels in SKU id order, hold every line only if every line has
the stock, and insert the order, its lines, reservations, movements, first event and outbox
events only if all were held; otherwise the statement changes nothing. In the form that
``placing_fast`` sends, the statement also reads the lines from the catalog, checks what
a lookup would, and marks channel listings (``placing_catalog``); in the other, the lines
come as the caller looked them up and priced them. The order comes as one JSON object and
the lines as one JSON array, and constants are written inline (``sql_parts``), so the text
is the same for every order of a shape: psycopg and the server parse and plan it once per
connection. (psycopg keeps its parsing of texts of up to 4,096 characters only; the longer
form goes to its raw cursor with numbered parameters, ``direct``.)

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
    exists,
    func,
    insert,
    literal_column,
    select,
    true,
    union_all,
    update,
)

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
from koudai_flask.services import placing_catalog
from koudai_flask.services.sql_parts import const, json_param, null_of, ref

ORDER = cast(Table, Order.__table__)
# Every column of an order row but its id, in the order of the insert.
ORDER_COLUMNS = tuple(c.key for c in ORDER.columns if c.key != "id")
# The order columns an ``order.*`` outbox event carries (``placing_write.row_payload``).
ORDER_PAYLOAD_COLUMNS = ("number", "channel", "external_id", "status", "total", "customer_id")

_LINE = cast(Table, OrderLine.__table__)
_EVENT = cast(Table, OrderEvent.__table__)
_RESERVATION = cast(Table, Reservation.__table__)
_MOVEMENT = cast(Table, StockMovement.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_LEVEL = cast(Table, StockLevel.__table__)


def _insert(table: Table, values: dict[str, Any], from_: FromClause) -> Any:
    """``INSERT INTO table (keys) SELECT values FROM from_``, as a CTE."""
    rows = select(*values.values()).select_from(from_)
    statement = insert(table).from_select(list(values), rows, include_defaults=False)
    return statement.cte(table.name.removeprefix("koudai_"))


def _wanted_given() -> tuple[Any, ColumnElement[Any], ColumnElement[Any]]:
    """The lines as the caller looked them up and priced them, every column given."""
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
    # Not "location_id": an UPDATE would take a parameter named after a column as a new value.
    location = bindparam("at_location", type_=Integer)
    return select(*lines.c).cte("wanted"), location, location


@lru_cache(maxsize=64)
def statement(from_catalog: placing_catalog.Shape | None = None) -> CompoundSelect:
    """The statement; its rows are ``(kind, id, status, a, b)``.

    ``("order", id, None, subtotal, total)``: the order was placed. ``("event", id,
    status)``: an outbox event. ``("level", id, None, on_hand, reserved)``: a level after the
    hold. No ``order`` row: nothing changed, because some line was short of stock (or,
    ``from_catalog``, was not found or the order may not be placed as asked); then, with
    ``from_catalog`` and every line found and allowed, ``("short", sku_id, code, available,
    quantity)`` names each line short of stock (``_short_lines``).

    ``from_catalog``: the lines come as codes and quantities and are read from the catalog
    here (``placing_catalog``), the order's subtotal and total are summed here, and the
    listings of its SKUs on channels that take stock pushes are marked dirty with one
    ``channel.push_due`` event, as ``stock_export.mark_dirty_in`` does; the caller needs no
    read before it. Otherwise every line comes as the caller priced it (``_wanted_given``).
    """
    catalog = from_catalog is not None
    if from_catalog is not None:
        wanted, lock_at, location_id = placing_catalog.wanted_from_catalog(from_catalog)
    else:
        wanted, lock_at, location_id = _wanted_given()
    line_count = bindparam("line_count", type_=Integer)
    source = bindparam("source", type_=Text)
    level = _LEVEL

    # FOR UPDATE after ORDER BY takes the row locks in SKU id order: two orders of the same
    # SKUs never deadlock, as with one UPDATE per line in that order.
    lock = level.alias("l")
    locked = (
        select(ref("l.sku_id"), ref("l.on_hand"), ref("l.reserved"))
        .select_from(lock)
        .where(lock.c.location_id == lock_at, lock.c.sku_id.in_(select(wanted.c.sku_id)))
        .order_by(lock.c.sku_id)
        .with_for_update()
        .cte("locked")
    )
    enough = (
        select(ref("count(*)"))
        .select_from(locked.join(wanted, ref("locked.sku_id = wanted.sku_id")))
        .where(ref("locked.on_hand - locked.reserved >= wanted.quantity"))
        .scalar_subquery()
    )
    # ``enough`` has no column of the updated row, so it is checked once, before any row is
    # updated; every level is locked by then. The row condition is the conditional UPDATE
    # of ``ledger.reserve_stock``. (Unqualified names are the level's: ``wanted`` has none
    # of them.)
    held = (
        update(level)
        .where(
            ref("location_id") == location_id,
            level.c.sku_id == wanted.c.sku_id,
            ref("on_hand - reserved >= wanted.quantity"),
            enough == line_count,
        )
        .values(reserved=ref("reserved + wanted.quantity"))
        .returning(ref("id"), level.c.sku_id, ref("on_hand"), ref("reserved"))
        .cte("held")
    )
    all_held = select(ref("count(*)")).select_from(held).scalar_subquery() == line_count
    order = func.json_populate_record(
        literal_column(f"NULL::{ORDER.name}"), json_param("order")
    ).table_valued(*ORDER_COLUMNS, name="o")
    # Plain "o.number" columns, without labels: a shorter text.
    values: dict[str, ColumnElement[Any]] = {
        name: literal_column(f"o.{name}") for name in ORDER_COLUMNS
    }
    if catalog:
        subtotal = select(func.sum(wanted.c.unit_price * wanted.c.quantity)).scalar_subquery()
        values["subtotal"] = subtotal
        values["total"] = subtotal + ref("o.shipping_fee") - ref("o.discount")
    placed = (
        insert(ORDER)
        .from_select(
            list(ORDER_COLUMNS),
            select(*values.values()).select_from(order).where(all_held),
            include_defaults=False,
        )
        .returning(
            ORDER.c.id,
            ORDER.c.created_at,
            # The figures summed here, and what the event's payload needs of the row.
            *((ORDER.c.subtotal, *(ORDER.c[n] for n in ORDER_PAYLOAD_COLUMNS)) if catalog else ()),
        )
        .cte("placed")
    )
    order_id, now = ref("placed.id"), ref("placed.created_at")

    per_line = placed.join(wanted, true())
    order_lines = _insert(
        _LINE,
        {
            "order_id": order_id,
            "sku_id": ref("wanted.sku_id"),
            "sku_code": ref("wanted.sku_code"),
            "title": ref("wanted.title"),
            "variant": ref("wanted.variant"),
            "unit_price": ref("wanted.unit_price"),
            "quantity": ref("wanted.quantity"),
            "shipped_quantity": const(0, Integer()),
        },
        per_line,
    )
    reservations = _insert(
        _RESERVATION,
        {
            "sku_id": ref("wanted.sku_id"),
            "location_id": location_id,
            "order_id": order_id,
            "quantity": ref("wanted.quantity"),
            "status": const("active", Text()),
            "expires_at": bindparam("expires_at", type_=UTCDateTime()),
            "idempotency_key": ref("wanted.hold_key"),
            "created_at": now,
        },
        per_line,
    )
    movements = _insert(
        _MOVEMENT,
        {
            "sku_id": ref("wanted.sku_id"),
            "location_id": location_id,
            "on_hand_delta": const(0, Integer()),
            "reserved_delta": ref("wanted.quantity"),
            "reason": const("reservation", Text()),
            "source": source,
            "reference": bindparam("reference", type_=Text),
            "idempotency_key": const("reserve:", Text()) + ref("wanted.hold_key"),
            "note": const("", Text()),
            "created_at": now,
        },
        per_line,
    )
    first_event = _insert(
        _EVENT,
        {
            "order_id": order_id,
            "from_status": null_of("text"),
            "to_status": const("pending_payment", Text()),
            "actor": bindparam("actor", type_=Text),
            "note": const("", Text()),
            "created_at": now,
        },
        placed,
    )

    # ledger.stock_payload, key for key and in its order, with the figures after the hold.
    stock_payload = func.json_build_object(
        const("sku", Text()),
        ref("wanted.sku_code"),
        const("location", Text()),
        bindparam("location_code", type_=Text),
        const("on_hand", Text()),
        ref("held.on_hand"),
        const("reserved", Text()),
        ref("held.reserved"),
        const("available", Text()),
        ref("held.on_hand - held.reserved"),
        const("reason", Text()),
        const("reservation", Text()),
        const("source", Text()),
        source,
    )

    def event(topic: str, payload: ColumnElement[Any], prefix: str) -> list[ColumnElement[Any]]:
        # The columns of outbox.event_row; the status is decided by the caller.
        return [
            const(topic, Text()),
            payload,
            bindparam(f"{prefix}_status", type_=Text),
            const(0, Integer()),
            null_of("timestamptz"),
            bindparam(f"{prefix}_done_at", type_=UTCDateTime()),
            null_of("text"),
            now,
        ]

    stock_events = select(*event("stock.changed", stock_payload, "stock")).select_from(
        per_line.join(held, held.c.sku_id == wanted.c.sku_id)
    )
    if catalog:
        # placing_write.row_payload, key for key and in its order, from the inserted row.
        pairs: list[ColumnElement[Any]] = []
        for name in ("number", "channel", "external_id", "status"):
            pairs += [const(name, Text()), placed.c[name]]
        pairs += [const("previous_status", Text()), null_of("text")]
        pairs += [const("total", Text()), placed.c.total]
        pairs += [const("customer_id", Text()), placed.c.customer_id]
        placed_payload: ColumnElement[Any] = func.json_build_object(*pairs)
    else:
        placed_payload = bindparam("placed_payload", type_=JSON)
    placed_event = select(*event("order.placed", placed_payload, "placed")).select_from(placed)
    all_events: list[Any] = [stock_events, placed_event]
    extra: list[Any] = []
    if catalog:
        marked = placing_catalog.mark_listings(held)
        extra.append(marked)
        # stock_export.mark_dirty_in's event, when it marked any listing.
        payload = placing_catalog.push_due_payload(wanted, marked)
        all_events.append(
            select(*event("channel.push_due", payload, "push"))
            .select_from(placed)
            .where(exists().select_from(marked))
        )
    events = (
        insert(_OUTBOX)
        .from_select(
            ["topic", "payload", "status", "attempts", "enqueued_at", "done_at", "last_error"]
            + ["created_at"],
            union_all(*all_events),
            include_defaults=False,
        )
        .returning(_OUTBOX.c.id, _OUTBOX.c.status)
        .cte("events")
    )

    nothing: ColumnElement[Any] = literal_column("NULL")
    # The UNION types its columns pair by pair from the left: the typed branch goes first.
    return union_all(
        select(const("level", Text()), held.c.id, nothing, held.c.on_hand, held.c.reserved),
        select(
            const("order", Text()),
            placed.c.id,
            nothing,
            placed.c.subtotal if catalog else nothing,
            placed.c.total if catalog else nothing,
        ),
        select(const("event", Text()), events.c.id, events.c.status, nothing, nothing),
        *((_short_lines(locked, wanted, line_count),) if catalog else ()),
    ).add_cte(order_lines, reservations, movements, first_event, *extra)


def _short_lines(locked: Any, wanted: Any, line_count: ColumnElement[Any]) -> Any:
    """``("short", sku_id, code, available, quantity)`` for each line short of stock, when
    every line was found and may be placed: the caller can then raise ``OutOfStock`` at
    once, as the step-by-step hold would, instead of looking up why nothing changed."""
    all_found = select(ref("count(*)")).select_from(wanted).scalar_subquery() == line_count
    return (
        select(
            const("short", Text()),
            ref("locked.sku_id"),
            ref("wanted.sku_code"),
            ref("locked.on_hand - locked.reserved"),
            ref("wanted.quantity"),
        )
        .select_from(locked.join(wanted, ref("locked.sku_id = wanted.sku_id")))
        .where(ref("locked.on_hand - locked.reserved < wanted.quantity"), all_found)
    )
