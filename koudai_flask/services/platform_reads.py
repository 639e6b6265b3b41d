"""What the REST API reads, one cursor page at a time, within an API key's reach.

A cursor is opaque to callers: URL-safe base64 of the last row's id. Pages are ordered by id
(orders and customers newest first, the rest oldest first), so a row added while a client
pages through never shifts the pages it has not read yet.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import selectinload

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import (
    Channel,
    ChannelListing,
    Location,
    Order,
    Product,
    Sku,
    StockLevel,
)
from koudai_flask.services import backoffice, identities, order_search, packing, staff, sync_log
from koudai_flask.services.api_keys import Principal
from koudai_flask.services.channels import all_channels
from koudai_flask.services.order_search import OrderFilters
from koudai_flask.services.transaction import current_session

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([last_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        last_id = value[0]
        if isinstance(last_id, bool) or not isinstance(last_id, int):
            raise ValueError(last_id)
        return last_id
    except (ValueError, TypeError, IndexError, KeyError, binascii.Error, UnicodeError):
        raise ValidationError(
            "invalid cursor: pass the next_cursor of the previous page",
            {"cursor": ["not a cursor given by this API"]},
        ) from None


def _page(
    query: Select[Any], id_column: Any, cursor: str | None, limit: int, newest: bool
) -> Page[Any]:
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(id_column < after if newest else id_column > after)
    order = id_column.desc() if newest else id_column.asc()
    rows: Sequence[Any] = (
        current_session().scalars(query.order_by(None).order_by(order).limit(limit + 1)).all()
    )
    more = len(rows) > limit
    items = list(rows[:limit])
    return Page(items, encode_cursor(items[-1].id) if more and items else None)


# -- catalog ---------------------------------------------------------------------------------


def products(*, status: str | None, cursor: str | None, limit: int) -> Page[Product]:
    query = select(Product).options(
        selectinload(Product.skus),
        selectinload(Product.images),
        selectinload(Product.category),
        selectinload(Product.shipping_template),
    )
    if status is not None:
        query = query.where(Product.status == status)
    return _page(query, Product.id, cursor, limit, newest=False)


def product(product_id: int) -> Product:
    found = current_session().scalar(
        select(Product)
        .where(Product.id == product_id)
        .options(selectinload(Product.skus), selectinload(Product.images))
    )
    if found is None:
        raise NotFound(f"unknown product {product_id}")
    return found


def skus(*, active: bool | None, cursor: str | None, limit: int) -> Page[Sku]:
    query = select(Sku)
    if active is not None:
        query = query.where(Sku.active.is_(active))
    return _page(query, Sku.id, cursor, limit, newest=False)


def sku(code: str) -> Sku:
    found = current_session().scalar(select(Sku).where(Sku.code == code))
    if found is None:
        raise NotFound(f"unknown SKU {code!r}", reason="unknown_sku", detail={"sku": code})
    return found


# -- stock -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelRow:
    id: int
    sku: str
    location: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def listed_on(channels: frozenset[str]) -> Any:
    """SKUs linked to one of ``channels`` (what a channel-limited key may see of stock)."""
    return exists().where(
        ChannelListing.sku_id == Sku.id,
        ChannelListing.channel_id == Channel.id,
        Channel.name.in_(sorted(channels)),
    )


def stock_levels(
    who: Principal, *, sku_code: str | None, location: str | None, cursor: str | None, limit: int
) -> Page[LevelRow]:
    staff.require(who.user_id, "stock.adjust")
    query = (
        select(StockLevel.id, Sku.code, Location.code, StockLevel.on_hand, StockLevel.reserved)
        .join(Sku, Sku.id == StockLevel.sku_id)
        .join(Location, Location.id == StockLevel.location_id)
    )
    if sku_code is not None:
        query = query.where(Sku.code == sku_code)
    if location is not None:
        query = query.where(Location.code == location)
    if who.channels is not None:
        query = query.where(listed_on(who.channels))
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(StockLevel.id > after)
    rows = current_session().execute(query.order_by(StockLevel.id).limit(limit + 1)).all()
    items = [LevelRow(*row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items, encode_cursor(items[-1].id) if more and items else None)


def check_stock_scope(who: Principal, sku_code: str) -> None:
    """A channel-limited key sees only SKUs linked to its channels; others are 404."""
    query = select(Sku.id).where(Sku.code == sku_code)
    if who.channels is not None:
        query = query.where(listed_on(who.channels))
    if current_session().scalar(query) is None:
        raise NotFound(f"unknown SKU {sku_code!r}", reason="unknown_sku", detail={"sku": sku_code})


# -- orders ----------------------------------------------------------------------------------


def orders(
    who: Principal,
    *,
    status: str | None,
    channel: str | None,
    sku_code: str | None,
    created_from: date | None,
    created_to: date | None,
    q: str | None,
    cursor: str | None,
    limit: int,
    customer_id: int | None = None,
    slip: str | None = None,
    flag: str | None = None,
) -> Page[Order]:
    member = staff.require(who.user_id, "orders.view")
    filters = OrderFilters(
        status=status,
        channel=channel,
        date_from=created_from,
        date_to=created_to,
        sku=sku_code,
        q=q,
        slip_unprinted=slip == "unprinted",
        flag=flag,
    )
    query = order_search.order_query(member, filters).options(
        selectinload(Order.lines),
        selectinload(Order.shipments),
        selectinload(Order.payments),
        selectinload(Order.refunds),
    )
    if who.channels is not None:
        query = query.where(Order.channel.in_(sorted(who.channels)))
    if slip == "printed":
        query = query.where(~packing.unprinted())
    if customer_id is not None:
        # A merge moved the orders to the customer that stands now.
        query = query.where(Order.customer_id == identities.resolve(customer_id))
    return _page(query, Order.id, cursor, limit, newest=True)


def order(who: Principal, number: str, permission: str = "orders.view") -> Order:
    """An order within the key's channels and its owner's scope; otherwise 404."""
    found = backoffice.order_for(who.user_id, number, permission)
    if not who.sees_channel(found.channel):
        raise NotFound(f"unknown order {number!r}")
    return found


# -- channels --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelStatus:
    name: str
    kind: str
    active: bool
    status: str
    last_sync_at: datetime | None
    last_error: str | None
    linked_skus: int
    dead_letters: int
    oldest_pending_push: datetime | None


def channels(who: Principal) -> list[ChannelStatus]:
    """Every channel the key may see (the own shop included), by name, with its sync state."""
    member = staff.require(who.user_id, "channels.view")
    visible = staff.visible_channels(member)
    letters = sync_log.counts_by_channel()
    session = current_session()
    stats = {
        channel_id: (count, oldest)
        for channel_id, count, oldest in session.execute(
            select(
                ChannelListing.channel_id, func.count(), func.min(ChannelListing.dirty_since)
            ).group_by(ChannelListing.channel_id)
        )
    }
    rows = []
    for info in sorted(all_channels(), key=lambda c: c.name):
        if (visible is not None and info.name not in visible) or not who.sees_channel(info.name):
            continue
        linked, oldest = stats.get(info.id, (0, None))
        rows.append(
            ChannelStatus(
                info.name,
                info.kind,
                info.active,
                info.status,
                info.last_sync_at,
                info.last_error,
                linked,
                letters.get(info.id, 0),
                oldest,
            )
        )
    return rows


def channel(who: Principal, name: str) -> ChannelStatus:
    for row in channels(who):
        if row.name == name:
            return row
    raise NotFound(f"unknown channel {name!r}")
