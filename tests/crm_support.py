"""Shared set-up of the CRM tests: customers with orders of chosen totals, days and channels."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from koudai_flask.extension import get_state
from koudai_flask.models import Order, OutboxEvent, Refund
from koudai_flask.models.base import utcnow

_numbers = itertools.count(1)


def add_order(
    customer_id: int | None,
    *,
    total: int,
    days_ago: float = 1,
    channel: str = "web",
    status: str = "paid",
    city: str = "",
    refunded: int = 0,
) -> Order:
    """An order row as an import would leave it (no stock involved)."""
    session = get_state().session
    n = next(_numbers)
    at = utcnow() - timedelta(days=days_ago)
    order = Order(
        number=f"CRM{n:08d}",
        status=status,
        channel=channel,
        external_id=None if channel == "web" else f"X{n}",
        customer_id=customer_id,
        address={"name": "Buyer", "phone": "13800000000", "city": city, "street": "1 Road"}
        if city
        else None,
        subtotal=total,
        total=total,
        created_at=at,
        paid_at=at if status != "pending_payment" else None,
    )
    session.add(order)
    session.flush()
    if refunded:
        session.add(Refund(order_id=order.id, amount=refunded, reason="", idempotency_key=f"R{n}"))
    session.commit()
    return order


def events(topic: str) -> list[dict[str, Any]]:
    session = get_state().session
    return [
        e.payload
        for e in session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        )
    ]
