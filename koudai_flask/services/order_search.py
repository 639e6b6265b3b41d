"""The back office's order list: the filters staff set, and the orders they may see that
match them (the admin list, its CSV export and the API's order list share it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, exists, false, or_, select
from sqlalchemy.orm import selectinload

from koudai_flask.config import config_value
from koudai_flask.models import (
    Customer,
    Notification,
    Order,
    OrderLine,
    OrderMemo,
    Shipment,
    StaffMember,
)
from koudai_flask.services import packing, returns, staff


@dataclass(frozen=True)
class OrderFilters:
    status: str | None = None
    channel: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    buyer: str | None = None
    sku: str | None = None
    tracking_number: str | None = None
    q: str | None = None
    # Only orders with a buyer message that failed (WeChat template, SMS), to send again.
    message_failed: bool = False
    # Only refund requests whose returned goods were signed for: check them and refund.
    return_arrived: bool = False
    # Only orders whose packing slip (发货单) was never printed.
    slip_unprinted: bool = False
    # The seller's flag (旗帜): "any" flagged, "none" unflagged, or one colour "1" to "5".
    flag: str | None = None


def _local_day_start(day: date) -> datetime:
    zone = ZoneInfo(config_value("TIMEZONE"))
    return datetime.combine(day, time.min, tzinfo=zone)


def order_query(member: StaffMember, filters: OrderFilters) -> Select[Order]:
    """The orders ``member`` may see that match ``filters``, newest first."""
    query = select(Order)
    scope = staff.visible_channels(member)
    if scope is not None:
        query = query.where(Order.channel.in_(scope))
    if filters.status:
        query = query.where(Order.status == filters.status)
    if filters.channel:
        query = query.where(Order.channel == filters.channel)
    if filters.date_from:
        query = query.where(Order.created_at >= _local_day_start(filters.date_from))
    if filters.date_to:
        end = _local_day_start(filters.date_to) + timedelta(days=1)
        query = query.where(Order.created_at < end)
    if filters.buyer:
        term = f"%{filters.buyer.strip().lower()}%"
        buyers = select(Customer.id).where(
            or_(Customer.name.ilike(term), Customer.phone.ilike(term), Customer.email.ilike(term))
        )
        query = query.where(
            or_(
                Order.customer_id.in_(buyers),
                Order.address["name"].as_string().ilike(term),
                Order.address["phone"].as_string().ilike(term),
            )
        )
    if filters.sku:
        query = query.where(
            exists().where(OrderLine.order_id == Order.id, OrderLine.sku_code == filters.sku)
        )
    if filters.tracking_number:
        query = query.where(
            exists().where(
                Shipment.order_id == Order.id,
                Shipment.tracking_number == filters.tracking_number.strip(),
            )
        )
    if filters.q:
        term = filters.q.strip()
        query = query.where(or_(Order.number == term, Order.external_id == term))
    if filters.message_failed:
        query = query.where(
            exists().where(Notification.order_id == Order.id, Notification.status == "failed")
        )
    if filters.return_arrived:
        query = query.where(returns.goods_arrived())
    if filters.slip_unprinted:
        query = query.where(packing.unprinted())
    if filters.flag:
        query = query.where(_flagged(filters.flag))
    return query.options(selectinload(Order.seller_memo)).order_by(
        Order.created_at.desc(), Order.id.desc()
    )


FLAG_FILTERS = ("any", "none", "1", "2", "3", "4", "5")


def _flagged(flag: str) -> ColumnElement[bool]:
    """Orders with the seller's flag ``flag`` (one of ``FLAG_FILTERS``; another is no order)."""
    if flag not in FLAG_FILTERS:
        return false()
    flagged = exists().where(OrderMemo.order_id == Order.id, OrderMemo.flag > 0)
    if flag == "any":
        return flagged
    if flag == "none":
        return ~flagged
    return exists().where(OrderMemo.order_id == Order.id, OrderMemo.flag == int(flag))
