"""Best sellers (热销商品): what sold in some days, per SKU and channel, and how long the
shared stock lasts at that pace.

A seller who sells one stock through several channels asks two questions of the same
figures: what sells (and where), and what runs out first. A unit counts as sold when its
order was paid in the days asked (the shop's days, ``KOUDAI_TIMEZONE``) and was not given
back: the order is neither cancelled nor refunded as a whole, and the units refunded line by
line (``OrderLine.refunded_quantity``) are taken off. An order whose buyer asks for a refund
still counts until the refund is made. Sales are at the lines' prices, before the order's
discounts and shipping.

The pace is the units sold divided by the days asked; ``days_left`` is what the default
location has available (as the stock page counts it) divided by that pace: the days until
it is gone if the SKU sells as it did.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, func, select

from koudai_flask.models import Order, OrderLine, Product, Sku, StockLevel
from koudai_flask.services import funnel_stats, inventory
from koudai_flask.services.transaction import current_session

# Whole orders whose units went back: never paid for in the end, or refunded as a whole.
NOT_SOLD = ("cancelled", "refunded")
SORTS = ("units", "sales", "days_left")


@dataclass(frozen=True)
class BestSeller:
    sku_id: int
    sku_code: str
    product_id: int
    title: str  # the product's title now
    variant: str  # the SKU's attribute values ("黑 Black / M"), "" for a single SKU
    units: int
    sales: int  # fen, at the lines' prices
    orders: int
    by_channel: dict[str, int]  # units per channel, most first
    available: int  # at the default location now
    days_left: float  # available / units per day: 0 when none is left


@dataclass(frozen=True)
class Ranking:
    start: date
    end: date
    sort: str
    rows: list[BestSeller]  # the best ``limit``, in ``sort`` order
    skus: int  # SKUs that sold at all in the days, ``rows`` being the first of them
    units: int  # over every SKU, not only ``rows``
    sales: int
    channels: list[str]  # the channels with units in ``rows``, most units first

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def ranking(
    start: date,
    end: date,
    *,
    sort: str = "units",
    limit: int | None = 50,
    channel: str | None = None,
    channels: list[str] | None = None,
) -> Ranking:
    """The SKUs sold from ``start`` to ``end`` (both included), best first.

    ``sort``: ``units`` (most units first), ``sales`` (most money first) or ``days_left``
    (the one that runs out soonest first). ``channel`` keeps one channel's orders;
    ``channels`` is the staff member's scope (None: every channel). At most ``MAX_DAYS``
    days, counted back from ``end``; ``limit=None`` gives every SKU that sold.
    """
    if sort not in SORTS:
        raise ValueError(f"sort is one of {', '.join(SORTS)}, not {sort!r}")
    if end < start:
        start, end = end, start
    start = max(start, end - timedelta(days=funnel_stats.MAX_DAYS - 1))
    sold = _sold(start, end, channel=channel, channels=channels)
    totals = {sku_id: _Total.of(rows) for sku_id, rows in sold.items()}
    details = _details(list(totals))
    days = (end - start).days + 1
    rows = [
        _row(sku_id, total, details[sku_id], days)
        for sku_id, total in totals.items()
        if sku_id in details
    ]
    rows.sort(key=_SORT_KEYS[sort])
    best = rows if limit is None else rows[:limit]
    shares: dict[str, int] = defaultdict(int)
    for row in best:
        for name, units in row.by_channel.items():
            shares[name] += units
    return Ranking(
        start=start,
        end=end,
        sort=sort,
        rows=best,
        skus=len(rows),
        units=sum(total.units for total in totals.values()),
        sales=sum(total.sales for total in totals.values()),
        channels=sorted(shares, key=lambda name: (-shares[name], name)),
    )


@dataclass(frozen=True)
class _Total:
    units: int
    sales: int
    orders: int
    by_channel: dict[str, int]

    @classmethod
    def of(cls, rows: list[tuple[str, int, int, int]]) -> _Total:
        by_channel = {name: units for name, units, _, _ in rows}
        return cls(
            units=sum(units for _, units, _, _ in rows),
            sales=sum(sales for _, _, sales, _ in rows),
            # An order has one channel, so its orders per channel add up without overlap.
            orders=sum(orders for _, _, _, orders in rows),
            by_channel=dict(sorted(by_channel.items(), key=lambda item: (-item[1], item[0]))),
        )


def _sold(
    start: date, end: date, *, channel: str | None, channels: list[str] | None
) -> dict[int, list[tuple[str, int, int, int]]]:
    """SKU id → (channel, units, sales, orders) per channel with units left after refunds."""
    net = OrderLine.quantity - OrderLine.refunded_quantity
    query = (
        select(
            OrderLine.sku_id,
            Order.channel,
            func.sum(net),
            func.sum(net * OrderLine.unit_price),
            func.count(func.distinct(Order.id)),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            Order.paid_at >= funnel_stats.day_bounds(start)[0],
            Order.paid_at < funnel_stats.day_bounds(end)[1],
            Order.status.not_in(NOT_SOLD),
            net > 0,
        )
        .group_by(OrderLine.sku_id, Order.channel)
    )
    if channel is not None:
        query = query.where(Order.channel == channel)
    if channels is not None:
        query = query.where(Order.channel.in_(channels))
    sold: dict[int, list[tuple[str, int, int, int]]] = defaultdict(list)
    for sku_id, name, units, sales, orders in current_session().execute(query):
        sold[sku_id].append((name, int(units), int(sales), int(orders)))
    return sold


def _details(sku_ids: list[int]) -> dict[int, tuple[Sku, str, int]]:
    """SKU id → (the SKU, its product's title, available at the default location)."""
    if not sku_ids:
        return {}
    session = current_session()
    location = inventory.get_location(session)
    available = func.coalesce(StockLevel.on_hand - StockLevel.reserved, 0)
    found: dict[int, tuple[Sku, str, int]] = {}
    for chunk in range(0, len(sku_ids), 500):  # bound the IN list on big shops
        query = (
            select(Sku, Product.title, available)
            .join(Product, Product.id == Sku.product_id)
            .outerjoin(
                StockLevel,
                and_(StockLevel.sku_id == Sku.id, StockLevel.location_id == location.id),
            )
            .where(Sku.id.in_(sku_ids[chunk : chunk + 500]))
        )
        for sku, title, left in session.execute(query):
            found[sku.id] = (sku, title, int(left))
    return found


def _row(sku_id: int, total: _Total, detail: tuple[Sku, str, int], days: int) -> BestSeller:
    sku, title, available = detail
    per_day = total.units / days
    return BestSeller(
        sku_id=sku_id,
        sku_code=sku.code,
        product_id=sku.product_id,
        title=title,
        variant=sku.label if sku.attributes else "",
        units=total.units,
        sales=total.sales,
        orders=total.orders,
        by_channel=total.by_channel,
        available=available,
        days_left=round(max(available, 0) / per_day, 1),
    )


_SORT_KEYS = {
    "units": lambda row: (-row.units, -row.sales, row.sku_code),
    "sales": lambda row: (-row.sales, -row.units, row.sku_code),
    # What runs out first; of two that last as long, the one that sells more.
    "days_left": lambda row: (row.days_left, -row.units, row.sku_code),
}
