"""The order engine's actions: place, pay, cancel, ship, deliver, complete and refund.

The states and the transition table are in ``services.order_states``; refund requests (ask,
decline, take back) in ``services.refund_requests``, re-exported here so that every action
on an order is ``services.orders.<action>``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.models import Customer, Order, Payment
from koudai_flask.models.base import utcnow
from koudai_flask.services import inventory, placing, shipping
from koudai_flask.services.order_input import load_place_input
from koudai_flask.services.order_states import (
    ACTIONS,
    STATES,
    TRANSITIONS,
    get_order,
    reservations,
    transition,
)
from koudai_flask.services.refund_requests import decline_refund, request_refund, withdraw_refund
from koudai_flask.services.transaction import current_session, unit_of_work

__all__ = [
    "ACTIONS",
    "STATES",
    "TRANSITIONS",
    "cancel",
    "cancel_expired",
    "complete",
    "confirm_received",
    "decline_refund",
    "deliver",
    "mark_paid",
    "payment_replay",
    "place",
    "refund",
    "request_refund",
    "ship",
    "withdraw_refund",
]


def _digest(channel: str, data: dict[str, Any]) -> str:
    blob = json.dumps({"channel": channel, **data}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# -- placing ---------------------------------------------------------------------------------


def place(
    *,
    channel: str,
    lines: list[dict[str, Any]],
    customer: Customer | int | None = None,
    address: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    external_id: str | None = None,
    shipping_fee: int = 0,
    note: str = "",
    actor: str = "buyer",
    marketing: bool = False,
    coupon_code: str | None = None,
) -> Order:
    """Create an order and reserve its stock, or raise and change nothing.

    ``lines`` is ``[{"sku": code, "quantity": n}]`` (``unit_price`` only for orders imported
    from another channel). The same ``idempotency_key`` — or the same ``(channel,
    external_id)`` — returns the first order and reserves nothing more.

    With ``marketing`` (the own shop's checkout) the marketing plugins price the order in
    the same transaction: limited-time prices, full reductions and ``coupon_code``, whose
    use is taken there too (``services.marketing.CouponRefused`` when it cannot be).
    """
    from koudai_flask.services.marketing import normalise_code

    coupon = normalise_code(coupon_code)
    if coupon is not None and not marketing:
        raise ValidationError("coupon_code needs marketing=True")
    data = load_place_input(
        {
            "lines": lines,
            "address": address,
            "shipping_fee": shipping_fee,
            "external_id": external_id,
            "note": note,
        }
    )
    digest = _digest(
        channel,
        {"lines": data["lines"], "address": data["address"], "shipping_fee": data["shipping_fee"]}
        | ({"coupon": coupon} if coupon is not None else {}),
    )
    try:
        with unit_of_work() as session:
            return placing.place_in(
                session,
                channel,
                data,
                customer,
                idempotency_key,
                digest,
                actor,
                marketing=placing.MarketingAsk(coupon) if marketing else None,
            )
    except IntegrityError:
        # A concurrent call with the same key or external id committed first.
        session = current_session()
        found = placing.existing(
            session,
            idempotency_key=idempotency_key,
            channel=channel,
            external_id=data["external_id"],
        )
        if found is None:
            raise
        return placing.replay(found, digest)


# -- transitions -----------------------------------------------------------------------------


def mark_paid(
    number: str, *, amount: int, transaction_id: str, provider: str, actor: str = "system"
) -> Order:
    """Record a payment and move the order to ``paid``.

    A replay of the same ``(provider, transaction_id)`` returns the order and changes
    nothing, whatever state the order is in by then.
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(f"amount must be a positive integer of fen, got {amount!r}")
    if not transaction_id or not provider:
        raise ValidationError("transaction_id and provider are required")
    try:
        with unit_of_work() as session:
            replay = payment_replay(session, number, provider, transaction_id)
            if replay is not None:
                return replay
            order = get_order(session, number)
            if amount != order.total:
                raise ValidationError(
                    f"order {number}: paid amount {amount} does not match the total {order.total}"
                )
            transition(session, order, "pay", actor=actor, note=f"{provider} {transaction_id}")
            session.add(
                Payment(
                    order_id=order.id,
                    provider=provider,
                    transaction_id=transaction_id,
                    amount=amount,
                )
            )
            order.paid_at = utcnow()
            # Paid stock is held until the order ships or is refunded.
            for reservation in reservations(session, order):
                reservation.expires_at = None
            session.flush()
            return order
    except (IntegrityError, InvalidTransition):
        # A concurrent delivery of the same notify won the race: it is a replay after all.
        replay = payment_replay(current_session(), number, provider, transaction_id)
        if replay is None:
            raise
        return replay


def payment_replay(
    session: Session, number: str, provider: str, transaction_id: str
) -> Order | None:
    """The order a delivery of this provider transaction already paid (refreshed), None
    if none did; ``ValidationError`` if the transaction paid another order."""
    payment = session.scalar(
        select(Payment).where(
            Payment.provider == provider, Payment.transaction_id == transaction_id
        )
    )
    if payment is None:
        return None
    if payment.order.number != number:
        raise ValidationError(
            f"{provider} transaction {transaction_id} already paid order {payment.order.number}"
        )
    # Another delivery of the same notify may have paid it since this session loaded it.
    session.refresh(payment.order)
    return payment.order


def cancel(number: str, *, reason: str, actor: str = "system") -> Order:
    """Cancel an unpaid order and give its reserved stock back."""
    return _cancel(number, reason=reason, actor=actor, outcome="released")


def cancel_expired(number: str) -> Order:
    """Cancel an unpaid order whose reservation ran out (``order_clock.expire_unpaid``)."""
    return _cancel(number, reason="reservation expired", actor="system", outcome="expired")


def _cancel(number: str, *, reason: str, actor: str, outcome: str) -> Order:
    with unit_of_work() as session:
        order = get_order(session, number)
        transition(session, order, "cancel", actor=actor, note=reason)
        for reservation in reservations(session, order):
            inventory.close_reservation(session, reservation, outcome)
        # Coupon uses come back once: only the call that moved the order got this far.
        from koudai_flask.services.marketing import release_order

        release_order(session, order.id)
        return order


def ship(
    number: str,
    *,
    carrier: str,
    tracking_number: str,
    lines: dict[str, int] | None = None,
    actor: str = "system",
) -> Order:
    """Ship a paid order, or part of it (``lines``: ``{sku: quantity}``); see ``shipping``."""
    return shipping.ship(
        number, carrier=carrier, tracking_number=tracking_number, lines=lines, actor=actor
    )


def deliver(number: str, *, actor: str = "system") -> Order:
    with unit_of_work() as session:
        order = get_order(session, number)
        _deliver(session, order, actor)
        return order


def _deliver(session: Session, order: Order, actor: str) -> None:
    transition(session, order, "deliver", actor=actor)
    for shipment in order.shipments:
        if shipment.status != "delivered":
            shipment.status = "delivered"
            shipment.delivered_at = utcnow()


def confirm_received(number: str, *, actor: str = "buyer") -> Order:
    """The buyer has the goods: a shipped order is delivered and completed, a delivered one
    completed, in one transaction; any other state raises ``InvalidTransition``."""
    with unit_of_work() as session:
        order = get_order(session, number)
        if order.status == "shipped":
            _deliver(session, order, actor)
        transition(session, order, "complete", actor=actor)
        return order


def complete(number: str, *, actor: str = "system") -> Order:
    with unit_of_work() as session:
        order = get_order(session, number)
        transition(session, order, "complete", actor=actor)
        return order


def refund(
    number: str,
    *,
    amount: int | None = None,
    reason: str = "",
    idempotency_key: str | None = None,
    actor: str = "system",
    lines: Mapping[str, int] | None = None,
    restock: bool = False,
    settles: bool = False,
) -> Order:
    """Refund money through the order, or for some of its units (``lines``); see
    ``services.refunds.refund``."""
    from koudai_flask.services import refunds

    return refunds.refund(
        number,
        amount=amount,
        reason=reason,
        idempotency_key=idempotency_key,
        actor=actor,
        lines=lines,
        restock=restock,
        settles=settles,
    )
