"""Applying what payment providers report to orders."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select

from koudai_flask.errors import InvalidTransition, NotFound, ValidationError
from koudai_flask.models import Order, Reservation
from koudai_flask.payments.base import PaymentAction, PaymentNotice, PaymentRequest
from koudai_flask.services import orders
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.payments")


def apply_notice(notice: PaymentNotice) -> Order:
    """Mark the order paid from a verified notice; idempotent on the transaction id.

    An unknown order or an amount that differs from the order's total raises
    ``ValidationError`` and changes nothing.
    """
    try:
        order = orders.get_order(current_session(), notice.order_number)
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
        order = orders.get_order(session, number)
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
    order = orders.get_order(session, number)
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

    order = orders.get_order(current_session(), payload["number"])
    if order.payment_provider in (None, "offline"):
        return
    provider = payments.enabled().get(order.payment_provider)
    if provider is not None:
        provider.close(order.number)
