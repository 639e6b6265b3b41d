"""Refund requests: the buyer (or a channel) asks for money back, the seller declines, the
one who asked takes it back. What is then refunded goes through ``services.refunds``."""

from __future__ import annotations

from collections.abc import Mapping

from koudai_flask.errors import ValidationError
from koudai_flask.models import Order
from koudai_flask.services import returns, shipping
from koudai_flask.services.order_states import (
    MAX_REASON,
    WITHDRAWN,
    get_order,
    refund_request,
    transition,
)
from koudai_flask.services.transaction import unit_of_work


def request_refund(
    number: str,
    *,
    reason: str,
    actor: str = "buyer",
    lines: Mapping[str, int] | None = None,
    returning: bool = False,
) -> Order:
    """Ask for the money back: a paid, shipped or delivered order goes to ``refunding``.

    ``lines`` (``{sku: units}``) names the units the request is for (None: the whole
    order); ``returning`` says the goods go back (退货退款), which needs something shipped.
    Both are kept on the request for staff, who refund what they decide."""
    with unit_of_work() as session:
        order = get_order(session, number)
        session.refresh(order)
        wanted = returns.check_lines(order, lines) if lines is not None else None
        if returning and not any(line.shipped_quantity for line in order.lines):
            raise ValidationError(
                f"order {number}: nothing has shipped, so nothing can go back",
                reason="return_unshipped",
            )
        detail = {"lines": wanted, "returning": returning} if wanted or returning else None
        transition(session, order, "request_refund", actor=actor, note=reason, detail=detail)
        return order


def decline_refund(number: str, *, reason: str, actor: str = "system") -> Order:
    """The seller keeps the sale: a ``refunding`` order goes back to the state it was
    requested from, with ``reason`` (which the buyer reads) on its timeline."""
    reason = " ".join(reason.split())
    if not 1 <= len(reason) <= MAX_REASON:
        raise ValidationError(
            f"a reason for declining has 1 to {MAX_REASON} characters", reason="decline_reason"
        )
    with unit_of_work() as session:
        order = get_order(session, number)
        asked = refund_request(session, order)
        if asked is not None and asked.by_channel and actor != asked.actor:
            raise ValidationError(
                f"order {number}: the buyer asked on {order.channel}; refuse it there, and "
                "this order follows",
                reason="refund_on_channel",
                detail={"channel": order.channel},
            )
        transition(session, order, "decline_refund", actor=actor, note=reason)
        # Back to paid with what is left refunded meanwhile: nothing more will ship.
        shipping.ship_if_all_sent(session, order, actor=actor)
        return order


def withdraw_refund(number: str, *, actor: str = "buyer") -> Order:
    """The one who asked takes the refund request back: the order goes back to the state it
    was asked from (and on to shipped if what was left was refunded meanwhile). Not once the
    goods of a return have arrived at the shop: staff answer it then."""
    with unit_of_work() as session:
        order = get_order(session, number)
        session.refresh(order)
        asked = refund_request(session, order)
        if asked is not None and asked.actor != actor:
            raise ValidationError(
                f"order {number}: the refund request is {asked.actor}'s to take back",
                reason="not_your_request",
            )
        returns.check_not_arrived(session, order)
        transition(
            session,
            order,
            "withdraw_refund",
            actor=actor,
            note="the request was taken back",
            detail=WITHDRAWN,
        )
        shipping.ship_if_all_sent(session, order, actor=actor)
        return order
