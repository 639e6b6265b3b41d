"""The figures on the back office's first page, within a staff member's channel scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from koudai_flask.config import config_value
from koudai_flask.models import (
    Notification,
    Order,
    Product,
    Sku,
    StaffMember,
    StockAlert,
    StockLevel,
)
from koudai_flask.services import packing, returns, staff
from koudai_flask.services.transaction import current_session

PAID_STATES = ("paid", "shipped", "delivered", "completed")


@dataclass(frozen=True)
class Dashboard:
    today: list[tuple[str, int, int]]  # channel, orders, revenue in fen
    waiting_to_ship: int
    slips_to_print: int  # of those, the ones whose packing slip was never printed
    refund_requests: int  # orders whose buyer asked for the money back, waiting on staff
    returns_arrived: int  # of those, the ones whose goods came back (signed for)
    low_stock: list[tuple[str, str, int]]  # sku code, product title, available
    failed_notifications: int
    products_on_sale: int
    buyers_waiting: int  # back-in-stock alerts (到货提醒) waiting, over every SKU


def for_member(member: StaffMember, *, now: datetime | None = None) -> Dashboard:
    session = current_session()
    zone = ZoneInfo(config_value("TIMEZONE"))
    local_now = (now or datetime.now(zone)).astimezone(zone)
    start = datetime.combine(local_now.date(), time.min, tzinfo=zone)
    scope = staff.visible_channels(member)

    def scoped(query: Any) -> Any:
        return query if scope is None else query.where(Order.channel.in_(scope))

    today = session.execute(
        scoped(
            select(Order.channel, func.count(), func.coalesce(func.sum(Order.total), 0))
            .where(
                Order.created_at >= start,
                Order.created_at < start + timedelta(days=1),
                Order.status.in_(PAID_STATES),
            )
            .group_by(Order.channel)
            .order_by(Order.channel)
        )
    ).all()
    waiting = dict(
        session.execute(
            scoped(
                select(Order.status, func.count())
                .where(Order.status.in_(("paid", "refunding")))
                .group_by(Order.status)
            )
        ).all()
    )
    threshold = config_value("LOW_STOCK_THRESHOLD")
    low = session.execute(
        select(Sku.code, Product.title, StockLevel.on_hand - StockLevel.reserved)
        .join(Sku, Sku.id == StockLevel.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(
            Product.status == "active",
            Sku.active.is_(True),
            or_(
                (Sku.low_stock_threshold.is_(None))
                & (StockLevel.on_hand - StockLevel.reserved <= threshold),
                StockLevel.on_hand - StockLevel.reserved <= Sku.low_stock_threshold,
            ),
        )
        .order_by(StockLevel.on_hand - StockLevel.reserved, Sku.code)
        .limit(20)
    ).all()
    failed = session.scalar(
        scoped(
            select(func.count())
            .select_from(Notification)
            .join(Order, Order.id == Notification.order_id)
            .where(Notification.status == "failed")
        )
    )
    arrived = session.scalar(
        scoped(select(func.count()).select_from(Order).where(returns.goods_arrived()))
    )
    unprinted = session.scalar(
        scoped(
            select(func.count())
            .select_from(Order)
            .where(Order.status == packing.PACKABLE, packing.unprinted())
        )
    )
    products = session.scalar(
        select(func.count()).select_from(Product).where(Product.status == "active")
    )
    waiting_alerts = session.scalar(
        select(func.count()).select_from(StockAlert).where(StockAlert.status == "waiting")
    )
    return Dashboard(
        today=[(c, n, int(r)) for c, n, r in today],
        waiting_to_ship=waiting.get("paid", 0),
        slips_to_print=unprinted or 0,
        refund_requests=waiting.get("refunding", 0),
        returns_arrived=arrived or 0,
        low_stock=[(code, title, int(left)) for code, title, left in low],
        failed_notifications=failed or 0,
        products_on_sale=products or 0,
        buyers_waiting=waiting_alerts or 0,
    )
