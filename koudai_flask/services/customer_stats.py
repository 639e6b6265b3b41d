"""What a customer's orders add up to: spend, order count, first and last order, RFM scores.

Computed by query, not kept in a table: the figures are never stale (a refund or a merge
shows at once), and for the customer counts of a mid-tier seller (up to some hundred
thousand) one grouped pass over the orders is cheap. The rule tags that need the figures
every night are written by a job (services.tag_rules), so pages never wait for them.

Counted orders are those paid for and not fully refunded (``paid``, ``shipped``,
``delivered``, ``completed``, ``refunding``); spend is their totals less partial refunds.

RFM uses fixed thresholds (``KOUDAI_CRM_RFM_THRESHOLDS``), not quintiles: a customer's score
then does not move because other customers bought, and a rule like ``rfm_r >= 4`` means the
same thing every day. Each axis scores 1 to 5; a customer without a counted order scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Subquery, case, func, select

from koudai_flask.config import config_value
from koudai_flask.models import Customer, Order, Refund
from koudai_flask.models.base import utcnow
from koudai_flask.services.identities import not_merged_away
from koudai_flask.services.transaction import current_session

COUNTED_STATUSES = ("paid", "shipped", "delivered", "completed", "refunding")


@dataclass(frozen=True)
class CustomerStats:
    order_count: int
    total_spent: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    rfm_r: int
    rfm_f: int
    rfm_m: int


def _score_down(value: Any, bounds: list[Any], present: Any) -> ColumnElement[int]:
    """5 when ``value >= bounds[3]``, ..., 2 when ``>= bounds[0]``, else 1; 0 if absent."""
    whens = [(value >= bound, 5 - i) for i, bound in enumerate(reversed(bounds))]
    return case((~present, 0), *whens, else_=1)


def days_at_most(moment: Any, days: int, now: datetime) -> ColumnElement[bool]:
    """``moment`` lies at most ``days`` whole days before ``now`` (days since <= ``days``).

    Days since = whole days elapsed, so "0 days" is the last 24 hours. The comparison is on
    timestamps computed here, so it reads the same on SQLite and PostgreSQL.
    """
    result: ColumnElement[bool] = moment > now - timedelta(days=days + 1)
    return result


def stats_subquery(now: datetime | None = None) -> Subquery:
    """One row per customer not merged away: ``customer_id``, ``created_at``,
    ``order_count``, ``total_spent``, ``first_order_at``, ``last_order_at``, ``rfm_r``,
    ``rfm_f``, ``rfm_m``."""
    now = now or utcnow()
    bounds = config_value("CRM_RFM_THRESHOLDS")
    refunds = (
        select(Refund.order_id, func.sum(Refund.amount).label("refunded"))
        .group_by(Refund.order_id)
        .subquery()
    )
    per_customer = (
        select(
            Order.customer_id.label("customer_id"),
            func.count(Order.id).label("order_count"),
            func.sum(Order.total - func.coalesce(refunds.c.refunded, 0)).label("total_spent"),
            func.min(Order.created_at).label("first_order_at"),
            func.max(Order.created_at).label("last_order_at"),
        )
        .outerjoin(refunds, refunds.c.order_id == Order.id)
        .where(Order.status.in_(COUNTED_STATUSES), Order.customer_id.is_not(None))
        .group_by(Order.customer_id)
        .subquery()
    )
    count = func.coalesce(per_customer.c.order_count, 0)
    spent = func.coalesce(per_customer.c.total_spent, 0)
    last = per_customer.c.last_order_at
    has_orders = per_customer.c.order_count.is_not(None)
    # Recency: at most recency_days[0] days since the last order scores 5, and so on.
    recency = [
        (days_at_most(last, days, now), 5 - i) for i, days in enumerate(bounds["recency_days"])
    ]
    return (
        select(
            Customer.id.label("customer_id"),
            Customer.created_at.label("created_at"),
            count.label("order_count"),
            spent.label("total_spent"),
            per_customer.c.first_order_at.label("first_order_at"),
            last.label("last_order_at"),
            case((~has_orders, 0), *recency, else_=1).label("rfm_r"),
            _score_down(count, bounds["frequency"], has_orders).label("rfm_f"),
            _score_down(spent, bounds["monetary"], has_orders).label("rfm_m"),
        )
        .outerjoin(per_customer, per_customer.c.customer_id == Customer.id)
        .where(not_merged_away())
        .subquery("customer_stats")
    )


def stats_of(customer_id: int) -> CustomerStats:
    stats = stats_subquery()
    row = (
        current_session()
        .execute(select(stats).where(stats.c.customer_id == customer_id))
        .one_or_none()
    )
    if row is None:
        return CustomerStats(0, 0, None, None, 0, 0, 0)
    return CustomerStats(
        order_count=int(row.order_count),
        total_spent=int(row.total_spent),
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        rfm_r=int(row.rfm_r),
        rfm_f=int(row.rfm_f),
        rfm_m=int(row.rfm_m),
    )
