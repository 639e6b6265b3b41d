"""Orders the clock moves: unpaid ones whose hold ran out are cancelled, and the own
shop's shipped ones the buyer never confirmed are completed. Both run as periodic jobs
(``jobs.tasks``); each order is its own transaction through ``services.orders``, and one
that moved meanwhile is skipped, so a run is safe twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from koudai_flask.config import config_value
from koudai_flask.errors import InvalidTransition
from koudai_flask.models import Order, Reservation
from koudai_flask.models.base import utcnow
from koudai_flask.services import orders
from koudai_flask.services.transaction import current_session

AUTO_COMPLETE_BATCH = 500  # orders completed per run of the job at most


def complete_overdue(now: Any = None) -> list[str]:
    """Complete the own shop's shipped and delivered orders untouched for
    ``KOUDAI_AUTO_COMPLETE_AFTER``: the buyer did not confirm receipt, nor ask for a refund.

    Each order is its own transaction (``confirm_received`` by ``system``); one that moved
    meanwhile is skipped. A declined refund request moves the order, so its clock starts
    again then. Marketplace orders are left to the marketplace, whose state sync mirrors.
    """
    from koudai_flask.services.checkout import SHOP_CHANNEL

    after = config_value("AUTO_COMPLETE_AFTER")
    if after is None:
        return []
    cutoff = (now or utcnow()) - timedelta(seconds=after)
    numbers = (
        current_session()
        .scalars(
            select(Order.number)
            .where(
                Order.status.in_(("shipped", "delivered")),
                Order.channel == SHOP_CHANNEL,
                Order.updated_at < cutoff,
            )
            .order_by(Order.updated_at, Order.id)
            .limit(AUTO_COMPLETE_BATCH)
        )
        .all()
    )
    done = []
    for number in numbers:
        try:
            orders.confirm_received(number, actor="system")
        except InvalidTransition:
            continue
        done.append(number)
    return done


def expire_unpaid(now: Any = None) -> list[str]:
    """Cancel unpaid orders whose reservations have expired; returns their numbers.

    Each order is cancelled in its own transaction; an order paid or cancelled meanwhile is
    skipped, so each reservation is released exactly once.
    """
    now = now or utcnow()
    session = current_session()
    numbers = session.scalars(
        select(Order.number)
        .join(Reservation, Reservation.order_id == Order.id)
        .where(
            Order.status == "pending_payment",
            Reservation.status == "active",
            Reservation.expires_at < now,
        )
        .distinct()
    ).all()
    cancelled = []
    for number in numbers:
        try:
            orders.cancel_expired(number)
        except InvalidTransition:
            continue
        cancelled.append(number)
    return cancelled


__all__ = ["AUTO_COMPLETE_BATCH", "complete_overdue", "expire_unpaid"]
