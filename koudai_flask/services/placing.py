"""Placing an order: on PostgreSQL one statement, elsewhere a read and then the writes.

``orders.place`` validates the input and owns the transaction. On PostgreSQL an order that
the marketing plugins do not price is first tried as the one statement of
``placing_fast``, which reads the lines' SKUs itself and changes nothing unless the order
can be placed as asked; when it is alone in its transaction, it is that transaction. If it
changed nothing, or for the other orders and databases, this module does the work in Core
statements, without the ORM's unit of work: one query reads the channel, the SKUs and what
decides a replay (and finds the reason for a refusal), then on PostgreSQL one statement
(``placing_sql``) holds the stock and writes every row, and elsewhere one conditional UPDATE
per SKU and one INSERT per table do (``placing_write``). The read, and the write on
PostgreSQL, run on the driver's cursor (``direct``). The order is returned as a persistent
object of the session, built without a read back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, Table, bindparam, exists, null, select
from sqlalchemy.orm import Session

from koudai_flask.config import config_value
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import (
    Channel,
    ChannelListing,
    Customer,
    Location,
    Order,
    Product,
    Sku,
)
from koudai_flask.models.base import utcnow
from koudai_flask.services import direct, placing_fast, placing_write
from koudai_flask.services.placing_sql import ORDER_PAYLOAD_COLUMNS
from koudai_flask.services.placing_write import Line, Placing
from koudai_flask.services.transaction import outermost, remember_outbox_event

_CHANNEL = cast(Table, Channel.__table__)
_SKU = cast(Table, Sku.__table__)
_PRODUCT = cast(Table, Product.__table__)
_CUSTOMER = cast(Table, Customer.__table__)
_ORDER = cast(Table, Order.__table__)
_LISTING = cast(Table, ChannelListing.__table__)
_LOCATION = cast(Table, Location.__table__)


# -- what an order event says, numbers, replays -----------------------------------------------


def event_payload(order: Order, previous: str | None) -> dict[str, Any]:
    """The payload of an ``order.*`` outbox event: who the order is and where it stands."""
    values = {name: getattr(order, name) for name in ORDER_PAYLOAD_COLUMNS}
    return placing_write.row_payload(values, previous)


def new_number(now: datetime) -> str:
    """A new order number: prefix, the shop's local date, ten random digits."""
    zone = ZoneInfo(config_value("TIMEZONE"))
    day = now.astimezone(zone).strftime("%Y%m%d")
    return f"{config_value('ORDER_NUMBER_PREFIX')}{day}{secrets.randbelow(10**10):010d}"


def existing(
    session: Session, *, idempotency_key: str | None, channel: str, external_id: str | None
) -> Order | None:
    """The order already placed with this idempotency key, else this channel's external id."""
    if idempotency_key is not None:
        found = session.scalar(select(Order).where(Order.idempotency_key == idempotency_key))
        if found is not None:
            return found
    if external_id is not None:
        return session.scalar(
            select(Order).where(Order.channel == channel, Order.external_id == external_id)
        )
    return None


def replay(order: Order, digest: str) -> Order:
    """``order`` again for a repeated call, refused if the call asked for something else."""
    if order.request_digest != digest:
        raise ValidationError(
            f"idempotency key or external id already used by order {order.number} "
            "with different content; use a new key"
        )
    return order


# -- placing ---------------------------------------------------------------------------------


class Found(NamedTuple):
    """A row of ``_lookup``: the channel, then one SKU asked for (its columns None if none)."""

    kind: str
    active: bool
    id: int | None
    code: str | None
    price: int | None
    attributes: dict[str, Any] | None
    sku_active: bool | None
    title: str | None
    status: str | None
    listed: bool | None
    location_id: int | None
    by_key: int | None
    by_external_id: int | None
    customer: int | None


@lru_cache(maxsize=64)
def _lookup(codes: int, by_key: bool, by_external_id: bool, by_customer: bool) -> Select[Any]:
    """Everything placing must read, in one query: the channel, then a row per SKU found.

    No row means no such channel. Optional columns (NULL when not asked for): the order
    already placed with the idempotency key or the channel's external id (a replay), and
    whether the customer exists. ``listed`` tells whether any channel lists the SKU.

    The ``codes`` SKU codes are parameters ``code_0``, ``code_1``, ...: one text per number
    of codes, compiled once and run on the driver's cursor (``direct``), which PostgreSQL
    plans once per connection. (One ``= ANY(array)`` parameter would need a single text, but
    PostgreSQL then rates a plan for any array worse than one for the array at hand, and
    plans the query again on every call.)
    """
    columns: list[Any] = [
        _CHANNEL.c.kind,
        _CHANNEL.c.active,
        _SKU.c.id,
        _SKU.c.code,
        _SKU.c.price,
        _SKU.c.attributes,
        _SKU.c.active.label("sku_active"),
        _PRODUCT.c.title,
        _PRODUCT.c.status,
        # Whether any channel lists the SKU: if none does, no listing needs marking for a push.
        exists().where(_LISTING.c.sku_id == _SKU.c.id).label("listed"),
        select(_LOCATION.c.id)
        .where(_LOCATION.c.code == bindparam("location"))
        .scalar_subquery()
        .label("location_id"),
    ]
    by = select(_ORDER.c.id).where(_ORDER.c.idempotency_key == bindparam("key"))
    columns.append((by.scalar_subquery() if by_key else null()).label("by_key"))
    by = select(_ORDER.c.id).where(
        _ORDER.c.channel == bindparam("channel"),
        _ORDER.c.external_id == bindparam("external_id"),
    )
    columns.append((by.scalar_subquery() if by_external_id else null()).label("by_external_id"))
    by = select(_CUSTOMER.c.id).where(_CUSTOMER.c.id == bindparam("customer_id"))
    columns.append((by.scalar_subquery() if by_customer else null()).label("customer"))
    wanted = _SKU.c.code.in_([bindparam(f"code_{i}", type_=_SKU.c.code.type) for i in range(codes)])
    skus = _SKU.join(_PRODUCT, _PRODUCT.c.id == _SKU.c.product_id)
    return (
        select(*columns)
        .select_from(_CHANNEL.outerjoin(skus, wanted))
        .where(_CHANNEL.c.name == bindparam("channel"))
    )


def place_in(
    session: Session,
    channel_name: str,
    data: dict[str, Any],
    customer: Customer | int | None,
    idempotency_key: str | None,
    digest: str,
    actor: str,
    *,
    marketing: MarketingAsk | None = None,
) -> Order:
    """Place an order inside the caller's transaction, or raise; see the module docstring.

    On PostgreSQL that is one statement whatever the number of lines, without BEGIN and
    COMMIT when nothing else is in the transaction; when that statement refuses, the lookup
    and write take two more (three when a channel lists one of the SKUs:
    ``stock_sync.mark_dirty_in``). With ``marketing`` the plugins' reads come before the
    write, and the discount lines and redemptions (a coupon's use) after it, in the same
    transaction.
    """
    quantities: dict[str, int] = {}
    prices: dict[str, int] = {}
    for line in data["lines"]:
        quantities[line["sku"]] = quantities.get(line["sku"], 0) + line["quantity"]
        if "unit_price" in line:
            prices[line["sku"]] = line["unit_price"]
    external_id = data["external_id"]
    location_code = config_value("DEFAULT_LOCATION")
    if marketing is None:
        placed = _place_without_lookup(
            session,
            channel_name,
            data,
            quantities,
            prices,
            customer,
            idempotency_key,
            digest,
            actor,
            location_code,
        )
        if placed is not None:
            return placed
    # The caller's own pending changes go first, as a query's autoflush would send them.
    session.flush()
    customer_id = customer.id if isinstance(customer, Customer) else customer
    check_customer = customer_id is not None and not isinstance(customer, Customer)
    params: dict[str, Any] = {"channel": channel_name, "location": location_code}
    params.update((f"code_{i}", code) for i, code in enumerate(quantities))
    if idempotency_key is not None:
        params["key"] = idempotency_key
    if external_id is not None:
        params["external_id"] = external_id
    if check_customer:
        params["customer_id"] = customer_id
    connection = session.connection()
    lookup = _lookup(
        len(quantities), idempotency_key is not None, external_id is not None, check_customer
    )
    found = [Found._make(row) for row in direct.rows(connection, lookup, params)]
    if not found:  # no such channel, but the key may still name an order of another one
        earlier = existing(
            session, idempotency_key=idempotency_key, channel=channel_name, external_id=external_id
        )
        if earlier is not None:
            return replay(earlier, digest)
        raise NotFound(
            f"unknown channel {channel_name!r}; create it with services.channels.create()"
        )
    head = found[0]
    earlier_id = head.by_key or head.by_external_id
    if earlier_id is not None:
        earlier = session.get(Order, earlier_id)
        assert earlier is not None
        return replay(earlier, digest)
    if not head.active:
        raise NotFound(
            f"unknown channel {channel_name!r}; create it with services.channels.create()"
        )
    if check_customer and head.customer is None:
        raise NotFound(f"unknown customer {customer!r}")
    if prices and head.kind == "web":
        raise ValidationError(
            "unit_price may be given only for other channels' orders",
            {"lines": ["unit_price is set by the catalog"]},
        )
    skus = {row.code: row for row in found if row.id is not None}
    for code in quantities:
        if code not in skus:
            raise NotFound(f"unknown SKU {code!r}", reason="unknown_sku", detail={"sku": code})
    for sku in skus.values():
        if not sku.sku_active or sku.status != "active":
            raise ValidationError(f"SKU {sku.code!r} is not on sale", {"lines": [sku.code]})

    # Lock in SKU id order so two orders of the same SKUs can never deadlock.
    codes = sorted(quantities, key=lambda c: cast(int, skus[c].id))
    now = utcnow()
    number = new_number(now)
    unit_prices = {code: prices.get(code, cast(int, skus[code].price)) for code in codes}
    quote = None
    if marketing is not None:
        from koudai_flask.services.marketing import PricingLine, quote_lines

        quote = quote_lines(
            session,
            [
                PricingLine(cast(int, skus[c].id), c, quantities[c], unit_prices[c], unit_prices[c])
                for c in codes
            ],
            customer_id=customer_id,
            coupon_code=marketing.coupon_code,
            now=now,
            strict=True,
        )
        unit_prices = {code: quote.unit_price(code) for code in codes}
    discount = quote.discount if quote is not None else 0
    subtotal = sum(unit_prices[code] * quantities[code] for code in codes)
    placing = Placing(
        order=placing_write.order_row(
            number,
            channel_name,
            data,
            idempotency_key,
            digest,
            customer_id,
            subtotal,
            discount,
            now,
        ),
        lines=[
            Line(
                sku_id=cast(int, skus[code].id),
                sku_code=code,
                title=cast(str, skus[code].title),
                variant=_variant(skus[code].attributes, code),
                unit_price=unit_prices[code],
                quantity=quantities[code],
                hold_key=f"{placing_write.order_reference(number)}:{code}",
            )
            for code in codes
        ],
        location_id=head.location_id,
        location_code=location_code,
        expires_at=now + timedelta(seconds=config_value("RESERVATION_TTL")),
        actor=actor,
    )
    if connection.dialect.name == "postgresql" and placing.location_id is not None:
        order_id, event_ids = placing_write.write_in_one_statement(session, connection, placing)
    else:
        order_id, event_ids = placing_write.write_step_by_step(session, connection, placing)
    for event_id in event_ids:
        remember_outbox_event(session, event_id)
    if quote is not None:
        from koudai_flask.services.marketing import apply_to_order

        apply_to_order(session, order_id, quote)
    if any(skus[code].listed for code in codes):
        # Linked channels' listings of these SKUs need a push (services.stock_sync). A SKU
        # that no channel lists has nothing to mark, which saves the UPDATE.
        from koudai_flask.services.stock_sync import mark_dirty_in

        mark_dirty_in(session, *codes)
    return placing_write.persistent(session, order_id, placing.order)


def _place_without_lookup(
    session: Session,
    channel_name: str,
    data: dict[str, Any],
    quantities: dict[str, int],
    prices: dict[str, int],
    customer: Customer | int | None,
    idempotency_key: str | None,
    digest: str,
    actor: str,
    location_code: str,
) -> Order | None:
    """The order placed by ``placing_fast`` in one statement on PostgreSQL, or None if that
    changed nothing or cannot be used here (the lookup then goes on)."""
    bind = session.get_bind(Order.__mapper__)
    if bind.dialect.name != "postgresql":
        return None
    # Nothing of the caller's is open: the order's statement is its own transaction, on a
    # connection of its own. Otherwise it runs in the caller's, after the caller's changes.
    alone = isinstance(bind, Engine) and outermost(session) and not session.in_transaction()
    if not alone:
        session.flush()
    customer_id = customer.id if isinstance(customer, Customer) else customer
    now = utcnow()
    row = placing_write.order_row(
        new_number(now), channel_name, data, idempotency_key, digest, customer_id, 0, 0, now
    )
    placed = placing_fast.place(
        session,
        bind if alone else session.connection(),
        row,
        quantities,
        prices,
        customer_check=None if isinstance(customer, Customer) else customer_id,
        location_code=location_code,
        expires_at=now + timedelta(seconds=config_value("RESERVATION_TTL")),
        actor=actor,
    )
    if placed is None:
        return None
    order_id, written = placed
    return placing_write.persistent(session, order_id, written)


@dataclass(frozen=True)
class MarketingAsk:
    """Price the order through the marketing plugins, with this coupon code (or none)."""

    coupon_code: str | None = None


def _variant(attributes: dict[str, Any] | None, code: str) -> str:
    """The order line's variant text: ``Sku.label`` when the SKU has attributes."""
    if not attributes:
        return ""
    return " / ".join(str(value) for value in attributes.values()) or code
