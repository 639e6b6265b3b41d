"""Placing an order: one read, then the stock holds and the order's rows.

``orders.place`` validates the input and owns the transaction; this module does the work in
Core statements, without the ORM's unit of work: one query reads the channel, the SKUs and
what decides a replay, then on PostgreSQL one statement (``placing_sql``) holds the stock and
writes every row, and elsewhere one conditional UPDATE per SKU and one INSERT per table do.
The order is returned as a persistent object of the session, built without a read back.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NoReturn, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, Table, bindparam, exists, select
from sqlalchemy.orm import Session, make_transient_to_detached

from koudai_flask.config import config_value
from koudai_flask.errors import NotFound, ValidationError
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
from koudai_flask.models.base import utcnow
from koudai_flask.services import ledger, outbox, placing_sql
from koudai_flask.services.placing_sql import ORDER_COLUMNS
from koudai_flask.services.transaction import insert_linked, remember_outbox_event

_CHANNEL = cast(Table, Channel.__table__)
_SKU = cast(Table, Sku.__table__)
_PRODUCT = cast(Table, Product.__table__)
_CUSTOMER = cast(Table, Customer.__table__)
_ORDER = cast(Table, Order.__table__)
_ORDER_LINE = cast(Table, OrderLine.__table__)
_ORDER_EVENT = cast(Table, OrderEvent.__table__)
_RESERVATION = cast(Table, Reservation.__table__)
_MOVEMENT = cast(Table, StockMovement.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_LISTING = cast(Table, ChannelListing.__table__)
_LEVEL = cast(Table, StockLevel.__table__)
_LOCATION = cast(Table, Location.__table__)


# -- what an order event says, numbers, replays -----------------------------------------------


def event_payload(order: Order, previous: str | None) -> dict[str, Any]:
    """The payload of an ``order.*`` outbox event: who the order is and where it stands."""
    return {
        "number": order.number,
        "channel": order.channel,
        "external_id": order.external_id,
        "status": order.status,
        "previous_status": previous,
        "total": order.total,
        "customer_id": order.customer_id,
    }


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


@lru_cache(maxsize=8)
def _lookup(by_key: bool, by_external_id: bool, by_customer: bool) -> Select[Any]:
    """Everything placing must read, in one query: the channel, then a row per SKU found.

    No row means no such channel. Optional columns: the order already placed with the
    idempotency key or the channel's external id (a replay), and whether the customer exists.
    ``listed`` tells whether any channel lists the SKU.
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
    if by_key:
        by = select(_ORDER.c.id).where(_ORDER.c.idempotency_key == bindparam("key"))
        columns.append(by.scalar_subquery().label("by_key"))
    if by_external_id:
        by = select(_ORDER.c.id).where(
            _ORDER.c.channel == bindparam("channel"),
            _ORDER.c.external_id == bindparam("external_id"),
        )
        columns.append(by.scalar_subquery().label("by_external_id"))
    if by_customer:
        by = select(_CUSTOMER.c.id).where(_CUSTOMER.c.id == bindparam("customer_id"))
        columns.append(by.scalar_subquery().label("customer"))
    skus = _SKU.join(_PRODUCT, _PRODUCT.c.id == _SKU.c.product_id)
    return (
        select(*columns)
        .select_from(_CHANNEL.outerjoin(skus, _SKU.c.code.in_(bindparam("codes", expanding=True))))
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

    On PostgreSQL that is two statements whatever the number of lines (three when a channel
    lists one of the SKUs: ``stock_sync.mark_dirty_in``), besides BEGIN and COMMIT. With
    ``marketing`` the plugins' reads come before the write, and the discount lines and
    redemptions (a coupon's use) after it, in the same transaction.
    """
    quantities: dict[str, int] = {}
    prices: dict[str, int] = {}
    for line in data["lines"]:
        quantities[line["sku"]] = quantities.get(line["sku"], 0) + line["quantity"]
        if "unit_price" in line:
            prices[line["sku"]] = line["unit_price"]
    external_id = data["external_id"]
    # The caller's own pending changes go first, as a query's autoflush would send them.
    session.flush()
    customer_id = customer.id if isinstance(customer, Customer) else customer
    check_customer = customer_id is not None and not isinstance(customer, Customer)
    params: dict[str, Any] = {
        "channel": channel_name,
        "codes": list(quantities),
        "location": config_value("DEFAULT_LOCATION"),
    }
    if idempotency_key is not None:
        params["key"] = idempotency_key
    if external_id is not None:
        params["external_id"] = external_id
    if check_customer:
        params["customer_id"] = customer_id
    connection = session.connection()
    found = connection.execute(
        _lookup(idempotency_key is not None, external_id is not None, check_customer), params
    ).all()
    if not found:  # no such channel, but the key may still name an order of another one
        earlier = existing(
            session, idempotency_key=idempotency_key, channel=channel_name, external_id=external_id
        )
        if earlier is not None:
            return replay(earlier, digest)
        raise NotFound(
            f"unknown channel {channel_name!r}; create it with services.channels.create()"
        )
    head = found[0]._mapping
    earlier_id = head.get("by_key") or head.get("by_external_id")
    if earlier_id is not None:
        earlier = session.get(Order, earlier_id)
        assert earlier is not None
        return replay(earlier, digest)
    if not head["active"]:
        raise NotFound(
            f"unknown channel {channel_name!r}; create it with services.channels.create()"
        )
    if check_customer and head["customer"] is None:
        raise NotFound(f"unknown customer {customer!r}")
    if prices and head["kind"] == "web":
        raise ValidationError(
            "unit_price may be given only for other channels' orders",
            {"lines": ["unit_price is set by the catalog"]},
        )
    skus = {row.code: row for row in found if row.id is not None}
    for code in quantities:
        if code not in skus:
            raise NotFound(f"unknown SKU {code!r}")
    for sku in skus.values():
        if not sku.sku_active or sku.status != "active":
            raise ValidationError(f"SKU {sku.code!r} is not on sale", {"lines": [sku.code]})

    # Lock in SKU id order so two orders of the same SKUs can never deadlock.
    codes = sorted(quantities, key=lambda c: skus[c].id)
    now = utcnow()
    number = new_number(now)
    unit_prices = {code: prices.get(code, skus[code].price) for code in codes}
    quote = None
    if marketing is not None:
        from koudai_flask.services.marketing import PricingLine, quote_lines

        quote = quote_lines(
            session,
            [
                PricingLine(skus[c].id, c, quantities[c], unit_prices[c], unit_prices[c])
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
    order = Order(
        number=number,
        status="pending_payment",
        channel=channel_name,
        external_id=external_id,
        idempotency_key=idempotency_key,
        request_digest=digest,
        customer_id=customer_id,
        address=data["address"],
        note=data["note"],
        subtotal=subtotal,
        shipping_fee=data["shipping_fee"],
        discount=discount,
        total=subtotal + data["shipping_fee"] - discount,
        paid_at=None,
        payment_provider=None,
        created_at=now,
        updated_at=now,
    )
    lines = [
        Line(
            sku_id=skus[code].id,
            sku_code=code,
            title=skus[code].title,
            variant=_variant(skus[code].attributes, code),
            unit_price=unit_prices[code],
            quantity=quantities[code],
            hold_key=f"order:{number}:{code}",
        )
        for code in codes
    ]
    placing = Placing(
        order=order,
        lines=lines,
        location_id=head["location_id"],
        location_code=config_value("DEFAULT_LOCATION"),
        expires_at=now + timedelta(seconds=config_value("RESERVATION_TTL")),
        actor=actor,
    )
    if connection.dialect.name == "postgresql" and placing.location_id is not None:
        event_ids = _write_in_one_statement(session, connection, placing)
    else:
        event_ids = _write_step_by_step(session, connection, placing)
    for event_id in event_ids:
        remember_outbox_event(session, event_id)
    if quote is not None:
        from koudai_flask.services.marketing import apply_to_order

        apply_to_order(session, order.id, quote)
    if any(skus[code].listed for code in codes):
        # Linked channels' listings of these SKUs need a push (services.stock_sync). A SKU
        # that no channel lists has nothing to mark, which saves the UPDATE.
        from koudai_flask.services.stock_sync import mark_dirty_in

        mark_dirty_in(session, *codes)
    # The order becomes a persistent object of this session without being read back.
    make_transient_to_detached(order)
    session.add(order)
    return order


@dataclass(frozen=True)
class MarketingAsk:
    """Price the order through the marketing plugins, with this coupon code (or none)."""

    coupon_code: str | None = None


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
    """An order being placed (its id not yet set) and what writing it needs."""

    order: Order
    lines: list[Line]  # in SKU id order
    location_id: int | None
    location_code: str
    expires_at: datetime
    actor: str

    @property
    def now(self) -> datetime:
        return self.order.created_at

    @property
    def reference(self) -> str:
        return f"order:{self.order.number}"

    def order_row(self) -> dict[str, Any]:
        return {column: getattr(self.order, column) for column in ORDER_COLUMNS}


def _write_step_by_step(session: Session, connection: Connection, placing: Placing) -> list[int]:
    """Hold each line's stock, then insert the rows; returns the ids of pending events."""
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
        source=order.channel,
        reference=placing.reference,
        now=now,
    )
    events.append(outbox.event_row("order.placed", event_payload(order, None), now))
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
    order.id, event_ids = insert_linked(
        connection,
        _ORDER,
        placing.order_row(),
        [
            (_ORDER_LINE, order_lines),
            (_RESERVATION, reservations),
            (_MOVEMENT, movements),
            (_ORDER_EVENT, [placed]),
            (_OUTBOX, events),
        ],
    )
    return [
        id_ for id_, event in zip(event_ids, events, strict=True) if event["status"] == "pending"
    ]


def _write_in_one_statement(
    session: Session, connection: Connection, placing: Placing
) -> list[int]:
    """``_write_step_by_step`` as the one statement of ``placing_sql``: one round trip.

    When a line is short of stock the statement changes nothing, and ``OutOfStock`` names
    the first such line in SKU id order, as the step-by-step path does.
    """
    order, now = placing.order, placing.now
    stock_dispatch = outbox.needs_dispatch("stock.changed")
    placed_dispatch = outbox.needs_dispatch("order.placed")
    params = {
        "order": json.dumps(placing.order_row(), default=_json_time),
        "lines": [vars(line) for line in placing.lines],
        "line_count": len(placing.lines),
        "at_location": placing.location_id,
        "location_code": placing.location_code,
        "source": order.channel,
        "reference": placing.reference,
        "actor": placing.actor,
        "now": now,
        "expires_at": placing.expires_at,
        "stock_status": "pending" if stock_dispatch else "done",
        "stock_done_at": None if stock_dispatch else now,
        "placed_payload": event_payload(order, None),
        "placed_status": "pending" if placed_dispatch else "done",
        "placed_done_at": None if placed_dispatch else now,
    }
    pending = []
    for kind, row_id, status, on_hand, reserved in connection.execute(
        placing_sql.statement(), params
    ):
        if kind == "order":
            order.id = row_id
        elif kind == "event" and status == "pending":
            pending.append(row_id)
        elif kind == "level":
            ledger.sync_loaded_level(session, row_id, on_hand, reserved)
    if order.id is None:
        _refuse(session, connection, placing)
    return sorted(pending)


def _json_time(value: Any) -> str:
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


def _variant(attributes: dict[str, Any], code: str) -> str:
    """The order line's variant text: ``Sku.label`` when the SKU has attributes."""
    if not attributes:
        return ""
    return " / ".join(str(value) for value in attributes.values()) or code
