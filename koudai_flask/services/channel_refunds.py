"""A marketplace's after-sales, mirrored on the order it became here.

On a marketplace the buyer asks for a refund there and the seller agrees or refuses there;
the money moves there. What we keep in step is the state our order engine, the stock ledger
and the back office act on:

- a refund asked on the channel (any line waits on the seller or on a return) moves a paid,
  shipped or delivered order to ``refunding``, which no one can ship;
- the request withdrawn or refused there takes it back to where it was asked from (the
  ``decline_refund`` return), when it was the channel that asked;
- a trade closed after payment (the buyer's refund succeeded) ends ``refunded`` with the
  money recorded as given back on the channel, and stock not shipped yet back on the shelf;
  an order we never saw paid is cancelled instead;
- a line refunded while the trade goes on is a partial refund of that line's payment and
  units, once per line (its key is the line's id on the channel): units not shipped yet are
  no longer to ship and their held stock goes back on the shelf; when those were the lines
  the request named, the request is settled and the order goes on where it was.

Each step is one service call (one transaction), and each is idempotent: seen again, the
order is already where the step would take it and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select

from koudai_flask.connectors.base import RemoteOrder
from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.models import Refund
from koudai_flask.models.orders import CHANNEL_ACTOR
from koudai_flask.services import order_states, orders
from koudai_flask.services.transaction import unit_of_work

log = logging.getLogger("koudai_flask.sync")

AFTER_PAYMENT = ("paid", "shipped", "delivered")


def channel_actor(channel_name: str) -> str:
    return f"{CHANNEL_ACTOR}{channel_name}"


def refund_key(channel_name: str, external_id: str, line_id: str = "") -> str:
    """The idempotency key of the refund recorded for a trade (or one of its lines)."""
    return f"channel:{channel_name}:{external_id}:refund" + (f":{line_id}" if line_id else "")


def mirror(channel_name: str, number: str, remote: RemoteOrder, codes: Sequence[str]) -> bool:
    """Bring order ``number``'s after-sales up to the channel's; True if anything moved.
    ``codes`` are our SKU codes of ``remote``'s lines, in their order."""
    moved = False
    try:
        if remote.status == "refunded":
            return _refunded(channel_name, number, remote)
        moved = _lines_refunded(channel_name, number, remote, codes)
        status, asker = _where(number)
        if remote.refund_asked and status in AFTER_PAYMENT:
            _ask(channel_name, number, remote, codes)
            return True
        if not remote.refund_asked and asker == channel_actor(channel_name):
            orders.decline_refund(
                number,
                reason=f"refund request ended on {channel_name}",
                actor=channel_actor(channel_name),
            )
            return True
    except InvalidTransition:
        # A concurrent import (or staff) moved it first; the next import sees where it is.
        log.info("order %s already moved on while its refund was mirrored", number)
    return moved


def _ask(channel_name: str, number: str, remote: RemoteOrder, codes: Sequence[str]) -> None:
    """The channel's request, naming the lines asked for: once they are refunded there the
    request is settled here, and the rest of the order goes on."""
    asked = {
        code: line.quantity
        for line, code in zip(remote.lines, codes, strict=True)
        if line.refund == "asked"
    }
    reason, actor = f"refund asked on {channel_name}", channel_actor(channel_name)
    try:
        orders.request_refund(number, reason=reason, actor=actor, lines=asked)
    except ValidationError:  # more than is left to refund here: the request as a whole
        orders.request_refund(number, reason=reason, actor=actor)


def _where(number: str) -> tuple[str, str | None]:
    """The order's state, and who asked for the refund it waits on (None: it waits on none)."""
    with unit_of_work() as session:
        order = order_states.get_order(session, number)
        request = order_states.refund_request(session, order)
        return order.status, request.actor if request is not None else None


def _refunded(channel_name: str, number: str, remote: RemoteOrder) -> bool:
    """The trade closed after payment: the whole order refunded on the channel."""
    actor = channel_actor(channel_name)
    status, _ = _where(number)
    if status == "pending_payment":  # we never saw it paid: no money here to give back
        orders.cancel(number, reason=f"closed on {channel_name}", actor=actor)
        return True
    if status in AFTER_PAYMENT:
        orders.request_refund(number, reason=f"refunded on {channel_name}", actor=actor)
        status = "refunding"
    if status != "refunding":
        if status == "completed":
            log.warning(
                "order %s is completed here but refunded on %s: settle it in the back office",
                number,
                channel_name,
            )
        return False
    orders.refund(
        number,
        reason=f"refunded on {channel_name}",
        idempotency_key=refund_key(channel_name, remote.external_id),
        actor=actor,
    )
    return True


def _lines_refunded(
    channel_name: str, number: str, remote: RemoteOrder, codes: Sequence[str]
) -> bool:
    """Each line refunded on the channel, recorded once as a refund of its payment and its
    units: those not shipped yet are no longer to ship, and their stock goes back."""
    moved = False
    for line, code in zip(remote.lines, codes, strict=True):
        if line.refund != "refunded" or not line.external_line_id or line.paid <= 0:
            continue
        key = refund_key(channel_name, remote.external_id, line.external_line_id)
        with unit_of_work() as session:
            if session.scalar(select(Refund.id).where(Refund.idempotency_key == key)):
                continue
        try:
            orders.refund(
                number,
                amount=line.paid,
                lines={code: line.quantity},
                reason=f"line {code} refunded on {channel_name}",
                idempotency_key=key,
                actor=channel_actor(channel_name),
            )
        except ValidationError as exc:  # more than is left here: refunded by hand already
            log.warning(
                "order %s: a line refunded on %s not recorded: %s", number, channel_name, exc
            )
            continue
        moved = True
    return moved
