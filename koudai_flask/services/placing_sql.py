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
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    ColumnElement,
    CompoundSelect,
    FromClause,
    Integer,
    Table,
    Text,
    any_,
    bindparam,
    case,
    column,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.types import TypeEngine

from koudai_flask.models import (
    Channel,
    ChannelListing,
    Customer,
    Location,
    Order,
    OrderEvent,
    OrderLine,
    OutboxEvent,
    Product,
    Reservation,
    Sku,
    StockLevel,
    StockMovement,
)
from koudai_flask.models.base import UTCDateTime

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
_SKU = cast(Table, Sku.__table__)
_PRODUCT = cast(Table, Product.__table__)
_CHANNEL = cast(Table, Channel.__table__)
_CUSTOMER = cast(Table, Customer.__table__)
_LOCATION = cast(Table, Location.__table__)
_LISTING = cast(Table, ChannelListing.__table__)


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


def _variant(sku: FromClause) -> ColumnElement[Any]:
    """``placing._variant`` in SQL: the attribute values joined by " / ", the code if that is
    empty, and "" for a SKU without attributes (catalog schemas keep the values strings).
    One subquery, so that the values are read once."""
    attributes = case(
        (func.json_typeof(sku.c.attributes) == _const("object", Text()), sku.c.attributes)
    )
    joined = func.string_agg(literal_column("a.value"), _const(" / ", Text()))
    return (
        select(
            case(
                (func.count() == _const(0, Integer()), _const("", Text())),
                (joined == _const("", Text()), sku.c.code),
                else_=joined,
            )
        )
        .select_from(func.json_each_text(attributes).alias("a"))
        .scalar_subquery()
    )


class Shape(NamedTuple):
    """What a ``from_catalog`` statement checks besides the lines: one text per shape."""

    codes: int  # the lines' SKU codes, parameters code_0, code_1, ...
    by_key: bool  # no order holds the idempotency key ``key``
    by_external_id: bool  # no order of ``channel`` holds ``external_id``
    by_customer: bool  # the customer ``customer_id`` exists


def _wanted_from_catalog(shape: Shape) -> tuple[Any, ColumnElement[Any], ColumnElement[Any]]:
    """The lines read from the catalog, when the caller did not look them up.

    The SKU codes come as parameters ``code_0``, ``code_1``, ... (as in ``placing._lookup``,
    so that PostgreSQL finds each by its unique index in any plan) and the ``lines`` JSON
    array holds each code's ``quantity`` and, for another channel's order, ``unit_price``;
    title, variant and price come from the SKU and its product, and only SKUs on sale are
    found. No line at all is found unless the channel is active (and takes no prices if it
    is the own shop), no order holds the idempotency key or the channel's external id, and
    the customer exists (each check only when ``shape`` asks for it). A line not found
    leaves the statement short of lines, so it changes nothing.
    """
    asked = (
        func.json_to_recordset(bindparam("lines", type_=JSON))
        .table_valued(
            column("sku_code", Text), column("quantity", Integer), column("unit_price", Integer)
        )
        .render_derived(name="w", with_types=True)
    )
    sku, product = _SKU.alias("s"), _PRODUCT.alias("p")
    channel = bindparam("channel", type_=Text)
    ready: list[ColumnElement[bool]] = [
        exists().where(
            _CHANNEL.c.name == channel,
            _CHANNEL.c.active,
            or_(
                _CHANNEL.c.kind != _const("web", Text()), ~bindparam("prices_given", type_=Boolean)
            ),
        )
    ]
    if shape.by_key:
        ready.append(~exists().where(ORDER.c.idempotency_key == bindparam("key", type_=Text)))
    if shape.by_external_id:
        external_id = bindparam("external_id", type_=Text)
        ready.append(
            ~exists().where(ORDER.c.channel == channel, ORDER.c.external_id == external_id)
        )
    if shape.by_customer:
        ready.append(exists().where(_CUSTOMER.c.id == bindparam("customer_id", type_=Integer)))
    location = (
        select(_LOCATION.c.id)
        .where(_LOCATION.c.code == bindparam("location_code", type_=Text))
        .scalar_subquery()
    )
    codes = [bindparam(f"code_{i}", type_=Text) for i in range(shape.codes)]
    wanted = (
        select(
            sku.c.id.label("sku_id"),
            sku.c.code.label("sku_code"),
            product.c.title.label("title"),
            _variant(sku).label("variant"),
            func.coalesce(asked.c.unit_price, sku.c.price).label("unit_price"),
            asked.c.quantity.label("quantity"),
            (
                _const("order:", Text())
                + bindparam("order_number", type_=Text)
                + _const(":", Text())
                + sku.c.code
            ).label("hold_key"),
            location.label("at_location"),
        )
        .select_from(
            sku.join(product, product.c.id == sku.c.product_id).join(
                asked, asked.c.sku_code == sku.c.code
            )
        )
        .where(sku.c.code.in_(codes), sku.c.active, product.c.status == _const("active", Text()))
        .where(*ready)
        # The rows follow in SKU id order, as the lines of an order looked up first do.
        .order_by(sku.c.id)
        .cte("wanted")
    )
    # The levels to lock, before the join with ``wanted``; each written row takes the line's.
    first = select(wanted.c.at_location).limit(literal_column("1")).scalar_subquery()
    return wanted, first, _ref("wanted.at_location")


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
def statement(from_catalog: Shape | None = None) -> CompoundSelect:
    """The statement; its rows are ``(kind, id, status, a, b)``.

    ``("order", id, None, subtotal, total)``: the order was placed. ``("event", id,
    status)``: an outbox event. ``("level", id, None, on_hand, reserved)``: a level after the
    hold. No row at all: some line was short of stock (or, ``from_catalog``, was not found or
    the order may not be placed as asked), and nothing changed.

    ``from_catalog``: the lines come as codes and quantities and are read from the catalog
    here (``_wanted_from_catalog``), the order's subtotal and total are summed here, and the
    listings of its SKUs on channels that take stock pushes are marked dirty with one
    ``channel.push_due`` event, as ``stock_export.mark_dirty_in`` does; the caller needs no
    read before it. Otherwise every line comes as the caller priced it (``_wanted_given``).
    """
    catalog = from_catalog is not None
    if from_catalog is not None:
        wanted, lock_at, location_id = _wanted_from_catalog(from_catalog)
    else:
        wanted, lock_at, location_id = _wanted_given()
    line_count = bindparam("line_count", type_=Integer)
    source = bindparam("source", type_=Text)
    level = _LEVEL

    # FOR UPDATE after ORDER BY takes the row locks in SKU id order: two orders of the same
    # SKUs never deadlock, as with one UPDATE per line in that order.
    lock = level.alias("l")
    locked = (
        select(_ref("l.sku_id"), _ref("l.on_hand"), _ref("l.reserved"))
        .select_from(lock)
        .where(lock.c.location_id == lock_at, lock.c.sku_id.in_(select(wanted.c.sku_id)))
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
    # Plain "o.number" columns, without labels: a shorter text.
    values: dict[str, ColumnElement[Any]] = {
        name: literal_column(f"o.{name}") for name in ORDER_COLUMNS
    }
    if catalog:
        subtotal = select(func.sum(wanted.c.unit_price * wanted.c.quantity)).scalar_subquery()
        values["subtotal"] = subtotal
        values["total"] = subtotal + _ref("o.shipping_fee") - _ref("o.discount")
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
    if catalog:
        # placing_write.row_payload, key for key and in its order, from the inserted row.
        pairs: list[ColumnElement[Any]] = []
        for name in ("number", "channel", "external_id", "status"):
            pairs += [_const(name, Text()), placed.c[name]]
        pairs += [_const("previous_status", Text()), _null("text")]
        pairs += [_const("total", Text()), placed.c.total]
        pairs += [_const("customer_id", Text()), placed.c.customer_id]
        placed_payload: ColumnElement[Any] = func.json_build_object(*pairs)
    else:
        placed_payload = bindparam("placed_payload", type_=JSON)
    placed_event = select(*event("order.placed", placed_payload, "placed")).select_from(placed)
    all_events: list[Any] = [stock_events, placed_event]
    extra: list[Any] = []
    if catalog:
        marked = _mark_listings(held)
        extra.append(marked)
        # stock_export.mark_dirty_in's event, when it marked any listing.
        codes = select(
            func.json_agg(
                aggregate_order_by(wanted.c.sku_code, _ref('wanted.sku_code COLLATE "C"'))
            )
        ).scalar_subquery()
        channels = select(
            func.json_agg(aggregate_order_by(marked.c.channel_id.distinct(), marked.c.channel_id))
        ).scalar_subquery()
        payload = func.json_build_object(
            _const("skus", Text()), codes, _const("channels", Text()), channels
        )
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
        select(_const("level", Text()), held.c.id, nothing, held.c.on_hand, held.c.reserved),
        select(
            _const("order", Text()),
            placed.c.id,
            nothing,
            placed.c.subtotal if catalog else nothing,
            placed.c.total if catalog else nothing,
        ),
        select(_const("event", Text()), events.c.id, events.c.status, nothing, nothing),
    ).add_cte(order_lines, reservations, movements, first_event, *extra)


def _mark_listings(held: Any) -> Any:
    """``stock_export.mark_dirty_in``'s UPDATE: the held SKUs' listings on active channels
    of the kinds that take stock pushes (``push_kinds``), as a CTE of their channel ids."""
    pushing = select(_CHANNEL.c.id).where(
        _CHANNEL.c.active, _CHANNEL.c.kind == any_(bindparam("push_kinds", type_=ARRAY(Text)))
    )
    return (
        update(_LISTING)
        .where(_LISTING.c.sku_id.in_(select(held.c.sku_id)), _LISTING.c.channel_id.in_(pushing))
        .values(
            dirty_since=func.coalesce(
                _LISTING.c.dirty_since, bindparam("marked_at", type_=UTCDateTime())
            ),
            push_version=_LISTING.c.push_version + _const(1, Integer()),
        )
        .returning(_LISTING.c.channel_id)
        .cte("marked")
    )
