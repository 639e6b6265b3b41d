"""Refunds recorded on orders: partial ones keep the state, a full one ends in refunded."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.models import Order, Refund
from koudai_flask.services import inventory
from koudai_flask.services.transaction import unit_of_work


def refund(
    number: str,
    *,
    amount: int | None = None,
    reason: str = "",
    idempotency_key: str | None = None,
    actor: str = "system",
) -> Order:
    """Refund money through the order. ``amount=None`` refunds all that is left.

    A partial refund (less than what is left) records a ``Refund`` and leaves the state as
    it is; it is allowed while the order is paid, shipped, delivered or refunding. A full
    refund is the ``refund`` transition: only from ``refunding`` (``request_refund`` first),
    and stock not yet shipped goes back to the shelf.
    """
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0
    ):
        raise ValidationError(f"amount must be a positive integer of fen, got {amount!r}")
    from koudai_flask.services import orders

    with unit_of_work() as session:
        if idempotency_key is not None:
            done = session.scalar(select(Refund).where(Refund.idempotency_key == idempotency_key))
            if done is not None:
                return done.order
        order = orders.get_order(session, number)
        session.refresh(order)
        remaining = order.paid_amount - order.refunded_amount
        amount = remaining if amount is None else amount
        partial = 0 < amount < remaining
        if order.status not in ("paid", "shipped", "delivered", "refunding"):
            raise InvalidTransition(order.number, order.status, "refund")
        if amount > remaining or remaining <= 0:
            raise ValidationError(
                f"order {number}: cannot refund {amount}, only {remaining} is refundable"
            )
        if not partial and order.status != "refunding":
            raise InvalidTransition(order.number, order.status, "refund")
        session.add(
            Refund(
                order_id=order.id,
                amount=amount,
                reason=reason,
                idempotency_key=idempotency_key or f"refund:{secrets.token_hex(12)}",
            )
        )
        session.flush()
        if partial:
            orders.record_in_place(
                session,
                order,
                actor=actor,
                note=f"partial refund {amount}: {reason}",
                topic="order.partially_refunded",
                extra={"amount": amount},
            )
            return order
        orders._transition(session, order, "refund", actor=actor, note=f"refund {amount}: {reason}")
        for reservation in orders._reservations(session, order):
            inventory.close_reservation(session, reservation, "released")
        return order
