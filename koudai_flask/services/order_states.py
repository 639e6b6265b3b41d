"""The order state machine: one for the orders of every channel.

States and transitions are DESIGN.md's table, plus one way back (``RETURNS``): a refund
request the seller declines returns the order to the state it was asked from. Every
transition is one conditional UPDATE on the order's status (so two concurrent actions cannot
both move it), one ``OrderEvent`` and one outbox event, in one transaction. Anything else
raises ``InvalidTransition`` and changes nothing. The actions themselves are in
``services.orders`` (and ``services.refund_requests``); this module is what they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from koudai_flask.errors import InvalidTransition, NotFound
from koudai_flask.models import Order, OrderEvent, Reservation
from koudai_flask.models.base import utcnow
from koudai_flask.services import outbox, placing

STATES = (
    "pending_payment",
    "paid",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
    "refunding",
    "refunded",
)

# (from state, action) -> to state. Nothing else is allowed.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("pending_payment", "pay"): "paid",
    ("pending_payment", "cancel"): "cancelled",
    ("paid", "ship"): "shipped",
    ("shipped", "deliver"): "delivered",
    ("delivered", "complete"): "completed",
    ("paid", "request_refund"): "refunding",
    ("shipped", "request_refund"): "refunding",
    ("delivered", "request_refund"): "refunding",
    ("refunding", "refund"): "refunded",
}

MAX_REASON = 200  # characters of a refund request's or a declined refund's reason

# Actions that take an order back to the state it was in before its present one, with the
# outbox topic they write: a refund request the seller declines returns the order to paid,
# shipped or delivered, and is not announced as a new payment or shipment.
RETURNS: dict[tuple[str, str], str] = {
    ("refunding", "decline_refund"): "order.refund_declined",
    # The items a request named were refunded: the rest of the order goes on as before.
    ("refunding", "settle_refund"): "order.refund_settled",
    # The buyer took their request back.
    ("refunding", "withdraw_refund"): "order.refund_withdrawn",
}
# The detail that marks a request ended otherwise than declined (last_declined skips them).
SETTLED, WITHDRAWN = {"ended": "settled"}, {"ended": "withdrawn"}

ACTIONS = tuple(sorted({action for _, action in [*TRANSITIONS, *RETURNS]}))


def get_order(session: Session, number: str) -> Order:
    order = session.scalar(
        select(Order).where(Order.number == number).options(selectinload(Order.lines))
    )
    if order is None:
        raise NotFound(
            f"unknown order {number!r}", reason="unknown_order", detail={"number": number}
        )
    return order


def transition(
    session: Session,
    order: Order,
    action: str,
    *,
    actor: str,
    note: str = "",
    detail: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Move ``order`` by ``action`` or raise ``InvalidTransition``; returns the new state.
    ``detail`` is kept on the timeline entry (what a refund request asked for); ``extra``
    goes into the outbox event beside the order (the parcel of a shipment, a refund)."""
    session.refresh(order)
    current = order.status
    target = TRANSITIONS.get((current, action))
    topic = f"order.{target}"
    if (current, action) in RETURNS:
        target, topic = state_before(session, order), RETURNS[current, action]
    if target is None:
        raise InvalidTransition(order.number, current, action)
    moved = session.execute(
        update(Order)
        .execution_options(synchronize_session=False)
        .where(Order.id == order.id, Order.status == current)
        .values(status=target, updated_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if moved != 1:  # someone else moved it between our read and our write
        session.refresh(order)
        raise InvalidTransition(order.number, order.status, action)
    session.refresh(order)
    session.add(
        OrderEvent(
            order_id=order.id,
            from_status=current,
            to_status=target,
            actor=actor,
            note=note,
            detail=detail,
        )
    )
    payload = placing.event_payload(order, current)
    if detail is not None and "ended" not in detail:  # what a refund request asked for
        payload["refund_request"] = {**detail, "lines": detail.get("lines") or {}}
    outbox.record(session, topic, {**payload, **(extra or {})})
    return target


def state_before(session: Session, order: Order) -> str | None:
    """The state ``order`` was in when it entered its present one."""
    return session.scalar(
        select(OrderEvent.from_status)
        .where(
            OrderEvent.order_id == order.id,
            OrderEvent.to_status == order.status,
            OrderEvent.from_status != order.status,
        )
        .order_by(OrderEvent.id.desc())
        .limit(1)
    )


def record_in_place(
    session: Session,
    order: Order,
    *,
    actor: str,
    note: str,
    topic: str,
    extra: dict[str, Any],
    detail: dict[str, Any] | None = None,
) -> None:
    """A timeline entry and an outbox event for a change that keeps the order's state."""
    session.add(
        OrderEvent(
            order_id=order.id,
            from_status=order.status,
            to_status=order.status,
            actor=actor,
            note=note,
            detail=detail,
        )
    )
    outbox.record(session, topic, {**placing.event_payload(order, order.status), **extra})


def reservations(session: Session, order: Order) -> Sequence[Reservation]:
    return session.scalars(
        select(Reservation)
        .where(Reservation.order_id == order.id, Reservation.status == "active")
        .order_by(Reservation.sku_id, Reservation.id)
    ).all()


def refund_request(session: Session, order: Order) -> OrderEvent | None:
    """The event of the refund request a ``refunding`` order waits on (who asked, why)."""
    if order.status != "refunding":
        return None
    return session.scalar(
        select(OrderEvent)
        .where(
            OrderEvent.order_id == order.id,
            OrderEvent.to_status == "refunding",
            # Not a partial refund made meanwhile, which stays in refunding.
            OrderEvent.from_status != "refunding",
        )
        .order_by(OrderEvent.id.desc())
        .limit(1)
    )


def last_declined(events: Sequence[OrderEvent]) -> OrderEvent | None:
    """Of an order's ``events`` (in order), the last refund request the seller declined:
    the move out of ``refunding`` back where it was asked from; its note is the reason."""
    return next(
        (
            event
            for event in reversed(events)
            if event.from_status == "refunding"
            and event.to_status not in ("refunding", "refunded")
            and not (event.detail or {}).get("ended")
        ),
        None,
    )
