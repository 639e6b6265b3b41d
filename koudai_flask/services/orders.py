"""The order engine: one state machine for the orders of every channel.

States and transitions are DESIGN.md's table, plus one way back (``RETURNS``): a refund
request the seller declines returns the order to the state it was asked from. Every
transition is one conditional UPDATE on the order's status (so two concurrent actions cannot
both move it), one ``OrderEvent`` and one outbox event, in one transaction. Anything else
raises ``InvalidTransition`` and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from koudai_flask.errors import InvalidTransition, NotFound, ValidationError
from koudai_flask.models import (
    Customer,
    Order,
    OrderEvent,
    Payment,
    Reservation,
)
from koudai_flask.models.base import utcnow
from koudai_flask.services import inventory, outbox, placing, returns, shipping
from koudai_flask.services.order_input import load_place_input
from koudai_flask.services.transaction import current_session, unit_of_work

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


# -- helpers ---------------------------------------------------------------------------------


def get_order(session: Session, number: str) -> Order:
    order = session.scalar(
        select(Order).where(Order.number == number).options(selectinload(Order.lines))
    )
    if order is None:
        raise NotFound(
            f"unknown order {number!r}", reason="unknown_order", detail={"number": number}
        )
    return order


def _transition(
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


def _reservations(session: Session, order: Order) -> Sequence[Reservation]:
    return session.scalars(
        select(Reservation)
        .where(Reservation.order_id == order.id, Reservation.status == "active")
        .order_by(Reservation.sku_id, Reservation.id)
    ).all()


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
            _transition(session, order, "pay", actor=actor, note=f"{provider} {transaction_id}")
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
            for reservation in _reservations(session, order):
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
        _transition(session, order, "cancel", actor=actor, note=reason)
        for reservation in _reservations(session, order):
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
    _transition(session, order, "deliver", actor=actor)
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
        _transition(session, order, "complete", actor=actor)
        return order


def complete(number: str, *, actor: str = "system") -> Order:
    with unit_of_work() as session:
        order = get_order(session, number)
        _transition(session, order, "complete", actor=actor)
        return order


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
        _transition(session, order, "request_refund", actor=actor, note=reason, detail=detail)
        return order


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
        _transition(session, order, "decline_refund", actor=actor, note=reason)
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
        _transition(
            session,
            order,
            "withdraw_refund",
            actor=actor,
            note="the request was taken back",
            detail=WITHDRAWN,
        )
        shipping.ship_if_all_sent(session, order, actor=actor)
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
