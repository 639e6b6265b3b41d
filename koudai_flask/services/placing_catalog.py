"""The catalog side of the one placing statement (``placing_sql.statement(Shape(...))``).

When ``placing_fast`` places an order without looking anything up first, the statement
itself reads the lines' SKUs and products, checks what the lookup would have checked, and
marks the SKUs' channel listings for a push; these are those parts. The rows they give are
the ones ``placing``'s lookup and ``stock_export.mark_dirty_in`` would give (the tests
compare both ways).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    ColumnElement,
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
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from koudai_flask.models import Channel, ChannelListing, Customer, Location, Order, Product, Sku
from koudai_flask.models.base import UTCDateTime
from koudai_flask.services.sql_parts import const, ref
from koudai_flask.services.stock_export import dirty_values

_ORDER = cast(Table, Order.__table__)
_SKU = cast(Table, Sku.__table__)
_PRODUCT = cast(Table, Product.__table__)
_CHANNEL = cast(Table, Channel.__table__)
_CUSTOMER = cast(Table, Customer.__table__)
_LOCATION = cast(Table, Location.__table__)
_LISTING = cast(Table, ChannelListing.__table__)


def variant(sku: FromClause) -> ColumnElement[Any]:
    """``placing._variant`` in SQL: the attribute values joined by " / ", the code if that is
    empty, and "" for a SKU without attributes (catalog schemas keep the values strings).
    One subquery, so that the values are read once."""
    attributes = case(
        (func.json_typeof(sku.c.attributes) == const("object", Text()), sku.c.attributes)
    )
    joined = func.string_agg(literal_column("a.value"), const(" / ", Text()))
    return (
        select(
            case(
                (func.count() == const(0, Integer()), const("", Text())),
                (joined == const("", Text()), sku.c.code),
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


def wanted_from_catalog(shape: Shape) -> tuple[Any, ColumnElement[Any], ColumnElement[Any]]:
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
            or_(_CHANNEL.c.kind != const("web", Text()), ~bindparam("prices_given", type_=Boolean)),
        )
    ]
    if shape.by_key:
        ready.append(~exists().where(_ORDER.c.idempotency_key == bindparam("key", type_=Text)))
    if shape.by_external_id:
        external_id = bindparam("external_id", type_=Text)
        ready.append(
            ~exists().where(_ORDER.c.channel == channel, _ORDER.c.external_id == external_id)
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
            variant(sku).label("variant"),
            func.coalesce(asked.c.unit_price, sku.c.price).label("unit_price"),
            asked.c.quantity.label("quantity"),
            # placing_write.order_reference, then the code, as place_in's hold keys.
            (bindparam("reference", type_=Text) + const(":", Text()) + sku.c.code).label(
                "hold_key"
            ),
            location.label("at_location"),
        )
        .select_from(
            sku.join(product, product.c.id == sku.c.product_id).join(
                asked, asked.c.sku_code == sku.c.code
            )
        )
        .where(sku.c.code.in_(codes), sku.c.active, product.c.status == const("active", Text()))
        .where(*ready)
        # The rows follow in SKU id order, as the lines of an order looked up first do.
        .order_by(sku.c.id)
        .cte("wanted")
    )
    # The levels to lock, before the join with ``wanted``; each written row takes the line's.
    first = select(wanted.c.at_location).limit(literal_column("1")).scalar_subquery()
    return wanted, first, ref("wanted.at_location")


def mark_listings(held: Any) -> Any:
    """``stock_export.mark_dirty_in``'s UPDATE: the held SKUs' listings on active channels
    of the kinds that take stock pushes (``push_kinds``), as a CTE of their channel ids."""
    pushing = select(_CHANNEL.c.id).where(
        _CHANNEL.c.active, _CHANNEL.c.kind == any_(bindparam("push_kinds", type_=ARRAY(Text)))
    )
    return (
        update(_LISTING)
        .where(_LISTING.c.sku_id.in_(select(held.c.sku_id)), _LISTING.c.channel_id.in_(pushing))
        .values(dirty_values(bindparam("marked_at", type_=UTCDateTime())))
        .returning(_LISTING.c.channel_id)
        .cte("marked")
    )


def push_due_payload(wanted: Any, marked: Any) -> ColumnElement[Any]:
    """The payload of ``stock_export.mark_dirty_in``'s ``channel.push_due`` event: the
    order's SKU codes and the marked channels' ids, each sorted as Python sorts them."""
    codes = select(
        func.json_agg(aggregate_order_by(wanted.c.sku_code, ref('wanted.sku_code COLLATE "C"')))
    ).scalar_subquery()
    channels = select(
        func.json_agg(aggregate_order_by(marked.c.channel_id.distinct(), marked.c.channel_id))
    ).scalar_subquery()
    return func.json_build_object(const("skus", Text()), codes, const("channels", Text()), channels)
