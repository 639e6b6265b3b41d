"""Refunds recorded on orders: partial ones keep the state, a full one ends in refunded."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.models import Order, Refund
from koudai_flask.models.orders import PARTIAL_REFUND
from koudai_flask.services import inventory, returns
from koudai_flask.services.shipping import ship_if_all_sent
from koudai_flask.services.transaction import unit_of_work


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
    """Refund money through the order. ``amount=None`` refunds all that is left, or what
    ``lines`` cost (see ``returns.lines_amount``).

    A partial refund (less than what is left) records a ``Refund`` and leaves the state as
    it is; it is allowed while the order is paid, shipped, delivered or refunding. A full
    refund is the ``refund`` transition: only from ``refunding`` (``request_refund`` first),
    and stock not yet shipped goes back to the shelf. With ``lines`` (``{sku: units}``) the
    refund is for those units: the ones not shipped yet are no longer to ship and their
    stock goes back; shipped ones go back on the shelf with ``restock`` (the parcel came
    back). A paid order whose last units to ship are refunded this way counts as shipped.
    ``settles``: a partial refund agreed with the buyer ends their open request, as settled
    (the order goes back to where it was asked from); ``nothing_to_settle`` without one.
    """
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0
    ):
        raise ValidationError(f"amount must be a positive integer of fen, got {amount!r}")
    from koudai_flask.services import order_states

    with unit_of_work() as session:
        if idempotency_key is not None:
            done = session.scalar(select(Refund).where(Refund.idempotency_key == idempotency_key))
            if done is not None:
                return done.order
        order = order_states.get_order(session, number)
        session.refresh(order)
        remaining_fen = order.paid_amount - order.refunded_amount
        wanted = returns.check_lines(order, lines) if lines is not None else {}
        if amount is None:
            amount = returns.lines_amount(order, wanted) if wanted else remaining_fen
        partial = 0 < amount < remaining_fen
        if order.status not in ("paid", "shipped", "delivered", "refunding"):
            raise InvalidTransition(order.number, order.status, "refund")
        if amount > remaining_fen or remaining_fen <= 0:
            raise ValidationError(
                f"order {number}: cannot refund {amount}, only {remaining_fen} is refundable"
            )
        if not partial and order.status != "refunding":
            raise InvalidTransition(order.number, order.status, "refund")
        if settles and partial:
            check_settles(session, order)
        if partial and wanted and _nothing_would_ship(order, wanted):
            raise ValidationError(
                f"order {number}: these are all its goods and none has shipped; refund all "
                f"of it ({remaining_fen} fen)",
                reason="refund_everything",
                detail={"refundable_fen": remaining_fen},
            )
        key = idempotency_key or f"refund:{secrets.token_hex(12)}"
        made = Refund(order_id=order.id, amount=amount, reason=reason, idempotency_key=key)
        session.add(made)
        session.flush()
        if wanted:
            returns.take_back(session, order, wanted, refund_no=key, restock=restock)
        if partial:
            items = ", ".join(f"{code} x{units}" for code, units in wanted.items())
            what = f"{PARTIAL_REFUND} {amount}" + (f" ({items})" if items else "")
            order_states.record_in_place(
                session,
                order,
                actor=actor,
                note=f"{what}: {reason}",
                topic="order.partially_refunded",
                extra={
                    "amount": amount,
                    "refund_id": made.id,
                    **({"lines": wanted} if wanted else {}),
                },
            )
            if wanted:
                _settle_if_done(session, order, actor=actor)
            if settles and order.status == "refunding":
                order_states.transition(
                    session,
                    order,
                    "settle_refund",
                    actor=actor,
                    note=f"settled with a partial refund of {amount}",
                    detail=order_states.SETTLED,
                )
            if wanted:
                ship_if_all_sent(session, order, actor=actor)
            return order
        order_states.transition(
            session,
            order,
            "refund",
            actor=actor,
            note=f"refund {amount}: {reason}",
            extra={"amount": amount, "refund_id": made.id},
        )
        for reservation in order_states.reservations(session, order):
            inventory.close_reservation(session, reservation, "released")
        return order


def check_settles(session: Session, order: Order) -> None:
    """A refund may settle the buyer's request only while one is open."""
    from koudai_flask.services import order_states

    if order_states.refund_request(session, order) is None:
        raise ValidationError(
            f"order {order.number} has no refund request open to settle",
            reason="nothing_to_settle",
            detail={"number": order.number},
        )


def _settle_if_done(session: Session, order: Order, *, actor: str) -> None:
    """A request that named its items ends once they are all refunded: the order goes back
    to where it was asked from, as settled (not declined)."""
    from koudai_flask.services import order_states

    asked = order_states.refund_request(session, order)
    if asked is None or not asked.asked_lines:
        return
    refunded = {line.sku_code: line.refunded_quantity for line in order.lines}
    if all(refunded.get(code, 0) >= units for code, units in asked.asked_lines.items()):
        order_states.transition(
            session,
            order,
            "settle_refund",
            actor=actor,
            note="the items asked for were refunded",
            detail=order_states.SETTLED,
        )


def _nothing_would_ship(order: Order, wanted: Mapping[str, int]) -> bool:
    """Refunding ``wanted`` would leave the order with nothing shipped and nothing to ship."""
    shipped = sum(line.shipped_quantity for line in order.lines)
    left = sum(
        line.to_ship - min(wanted.get(line.sku_code, 0), line.to_ship) for line in order.lines
    )
    return shipped == 0 and left == 0


def value_of(
    order: Order, amount: int | None, lines: Mapping[str, int] | None, *, restock: bool
) -> tuple[int, int, dict[str, int]]:
    """What a refund staff or the API ask for comes to, checked before any money moves:
    ``(value, left, lines)`` — the fen to give back (``amount``, else what ``lines`` cost,
    else all that is left), the fen refundable, and the units asked for by SKU."""
    left = order.paid_amount - order.refunded_amount
    wanted = returns.check_lines(order, lines) if lines else {}
    if amount is not None:
        value = amount
    else:
        value = returns.lines_amount(order, wanted) if wanted else left
    if not order.payments or value <= 0 or value > left:
        raise ValidationError(
            f"order {order.number}: {left} fen can be refunded",
            {"amount": [f"at most {left}"]},
            reason="refund_too_much",
            detail={"number": order.number, "refundable_fen": left},
        )
    if restock and not wanted:
        returns.check_full(order.number, value, left)
    return value, left, wanted


def record(
    order: Order,
    *,
    value: int,
    left: int,
    lines: dict[str, int],
    reason: str,
    refund_no: str,
    actor: str,
    restock: bool,
    asked: str,
    settles: bool = False,
) -> dict[str, int]:
    """Record a refund whose money has moved (or moves elsewhere), in the caller's
    transaction: all that is left passes through ``refunding`` (``asked`` its note). With
    ``restock`` and no ``lines``, what the order shipped goes back on the shelf; returns
    those units."""
    from koudai_flask.services import orders

    if value == left and order.status in ("paid", "shipped", "delivered"):
        orders.request_refund(order.number, reason=asked, actor=actor)
    orders.refund(
        order.number,
        amount=value,
        reason=reason,
        idempotency_key=refund_no,
        actor=actor,
        lines=lines or None,
        restock=restock,
        settles=settles,
    )
    return returns.restock_shipped(order, refund_no) if restock and not lines else {}
