"""Applying what payment providers report to orders."""

from __future__ import annotations

import logging

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Order
from koudai_flask.payments.base import PaymentNotice
from koudai_flask.services import orders
from koudai_flask.services.transaction import current_session

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
