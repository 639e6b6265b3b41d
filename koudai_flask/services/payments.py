"""Applying what payment providers report to orders."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from koudai_flask.errors import InvalidTransition, NotFound, ValidationError
from koudai_flask.models import Order, OrderEvent, Payment, Refund, Reservation
from koudai_flask.payments.base import PaymentAction, PaymentNotice, PaymentRequest
from koudai_flask.services import order_states, orders
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.payments")


def apply_notice(notice: PaymentNotice) -> Order:
    """Mark the order paid from a verified notice; idempotent on the transaction id.

    An unknown order or an amount that differs from the order's total raises
    ``ValidationError`` and changes nothing.
    """
    try:
        order = order_states.get_order(current_session(), notice.order_number)
    except NotFound:
        raise ValidationError(
            f"{notice.provider} notify for unknown order {notice.order_number!r}"
        ) from None
    if not notice.paid:
        log.info("%s: order %s not paid yet", notice.provider, notice.order_number)
        return order
    if notice.amount != order.total:
        raise ValidationError(
            f"{notice.provider} notify for order {order.number}: amount {notice.amount} "
            f"differs from the total {order.total}"
        )
    if order.status == "cancelled":
        return _paid_after_cancel(notice)
    return orders.mark_paid(
        order.number,
        amount=notice.amount,
        transaction_id=notice.transaction_id,
        provider=notice.provider,
    )


def start(
    number: str,
    provider_name: str,
    *,
    scene: str,
    notify_url: str,
    return_url: str,
    client_ip: str,
    openid: str | None = None,
) -> PaymentAction:
    """Ask ``provider_name`` to start paying an unpaid order; remember the choice."""
    from koudai_flask import payments

    provider = payments.get_provider(provider_name)
    with unit_of_work() as session:
        order = order_states.get_order(session, number)
        if order.status != "pending_payment":
            raise InvalidTransition(order.number, order.status, "pay")
        order.payment_provider = provider.name
        expires_at = session.scalar(
            select(func.min(Reservation.expires_at)).where(
                Reservation.order_id == order.id, Reservation.status == "active"
            )
        )
        title = order.lines[0].title if order.lines else order.number
        description = title if len(order.lines) <= 1 else f"{title} +{len(order.lines) - 1}"
    return provider.start(
        PaymentRequest(
            order_number=order.number,
            amount=order.total,
            description=description[:120],
            notify_url=notify_url,
            return_url=return_url,
            client_ip=client_ip,
            scene=scene,  # type: ignore[arg-type]
            openid=openid,
            expires_at=expires_at,
        )
    )


def confirm_from_query(number: str) -> Order:
    """On the buyer's return from paying: ask the provider, mark paid if it says so."""
    from koudai_flask import payments

    session = current_session()
    order = order_states.get_order(session, number)
    if order.status != "pending_payment" or order.payment_provider in (None, "offline"):
        return order
    provider = payments.get_provider(order.payment_provider)
    status = provider.query(number)
    if status.state == "paid" and status.transaction_id and status.amount is not None:
        return apply_notice(
            PaymentNotice(
                provider=provider.name,
                order_number=number,
                transaction_id=status.transaction_id,
                amount=status.amount,
                paid=True,
            )
        )
    return order


def close_on_cancel(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler: a cancelled order's payment is closed at its provider."""
    from koudai_flask import payments

    order = order_states.get_order(current_session(), payload["number"])
    if order.payment_provider in (None, "offline"):
        return
    provider = payments.enabled().get(order.payment_provider)
    if provider is not None:
        provider.close(order.number)


# -- money that arrived for a cancelled order -------------------------------------------------

LATE_PAYMENT_TOPIC = "payment.refund_due"
LATE_REFUND_REASON = "paid after the order was cancelled"


def _paid_after_cancel(notice: PaymentNotice) -> Order:
    """The buyer paid while the order was being cancelled (the close at the provider came a
    moment too late). The money is real: record it on the order, say so in its timeline,
    and give it back through the provider (``refund_late_payment``, a job). Idempotent on
    the transaction id, like ``mark_paid``."""
    try:
        with unit_of_work() as session:
            replay = orders.payment_replay(
                session, notice.order_number, notice.provider, notice.transaction_id
            )
            if replay is not None:
                return replay
            order = order_states.get_order(session, notice.order_number)
            session.add(
                Payment(
                    order_id=order.id,
                    provider=notice.provider,
                    transaction_id=notice.transaction_id,
                    amount=notice.amount,
                )
            )
            order_states.record_in_place(
                session,
                order,
                actor="system",
                note=f"{notice.provider} {notice.transaction_id}: paid after the order was "
                "cancelled; the money goes back to the buyer",
                topic=LATE_PAYMENT_TOPIC,
                extra={
                    "provider": notice.provider,
                    "transaction_id": notice.transaction_id,
                    "amount": notice.amount,
                },
            )
            return order
    except IntegrityError:  # the same notify, delivered twice at once, recorded it first
        return order_states.get_order(current_session(), notice.order_number)


def refund_late_payment(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler: return a payment that came for a cancelled order, in full.

    The refund number is made from the transaction id, so a retried job asks the provider
    for the same refund (both gateways treat it as one) and records it once. A provider
    that refuses raises: the event stays for the relay and the refund is tried again.
    """
    from koudai_flask import payments

    number, amount = payload["number"], int(payload["amount"])
    refund_no = f"{number}-L{hashlib.sha256(payload['transaction_id'].encode()).hexdigest()[:8]}"
    session = current_session()
    done = session.scalar(select(Refund.id).where(Refund.idempotency_key == refund_no))
    session.rollback()
    if done is not None:
        return
    provider = payments.enabled().get(payload["provider"])
    if provider is None:
        raise ValidationError(
            f"order {number}: {payload['provider']} is not configured; refund "
            f"{amount} fen of transaction {payload['transaction_id']} by hand"
        )
    result = provider.refund(
        number,
        refund_no=refund_no,
        amount=amount,
        total=amount,
        reason=LATE_REFUND_REASON,
    )
    if result.status == "failed":
        raise ValidationError(f"order {number}: {provider.name} refused refund {refund_no}")
    with unit_of_work() as session:
        order = order_states.get_order(session, number)
        session.add(
            Refund(
                order_id=order.id,
                amount=amount,
                reason=LATE_REFUND_REASON,
                idempotency_key=refund_no,
                provider_refund_id=result.refund_id[:64] or None,
            )
        )
        session.add(
            OrderEvent(
                order_id=order.id,
                from_status=order.status,
                to_status=order.status,
                actor="system",
                note=f"{provider.name} refund {refund_no}: {amount} fen back to the buyer",
            )
        )
