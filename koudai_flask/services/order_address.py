"""Changing where an order goes (修改收货地址): the buyer wrote to the shop with a new address
before the parcel left.

An order's address can change while nothing of it has shipped: unpaid or paid, not asking
for a refund. Not an order that came from a marketplace (its address is the marketplace's:
the buyer changes it there) nor one handed to an ERP system, which ships it from the
address it was sent (change it there). The order's price stays as placed: the fee the buyer
paid or agreed to is not worked out again.

Staff change it (``backoffice.change_address``, ``orders.edit``); the buyer changes it
themselves while the order is unpaid, or paid and not yet being packed (its packing slip
not printed): after that the warehouse may already be putting the label on, so they ask
the shop.

The change is a timeline entry (the address before it in its detail) and an
``order.address_changed`` outbox event with both addresses. A packing slip already printed
shows the old address: the order goes back to the unprinted ones, so the warehouse's next
"print what is not printed" prints it again. A print takes the order rows FOR SHARE, so a
print and a change at the same moment come one after the other: the print shows the new
address, or the change sees the print (the buyer is then refused, as packing began).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.models import Channel, ChannelOrder, Order, OrderEvent, PackingSlip
from koudai_flask.models.base import utcnow
from koudai_flask.models.orders import ADDRESS_CHANGED
from koudai_flask.schemas import load
from koudai_flask.schemas.orders import AddressInput
from koudai_flask.services.order_states import get_order, record_in_place
from koudai_flask.services.transaction import current_session, unit_of_work

CHANGEABLE = ("pending_payment", "paid")
TOPIC = "order.address_changed"

_schema = AddressInput()


def change_address(
    number: str, address: dict[str, Any], *, actor: str = "system", by_buyer: bool = False
) -> Order:
    """Send order ``number`` to ``address`` (the fields of ``schemas.orders.AddressInput``).

    The same address again changes nothing. Raises ``ValidationError`` for an address the
    schema refuses or an order whose address is kept elsewhere, ``InvalidTransition`` for an
    order past the point where its address can change; either way nothing is written. The
    buyer (``by_buyer``) changes it themselves until packing begins: a paid order whose
    packing slip is printed is refused (``address_packing``: they ask the shop)."""
    new = load(_schema, address, "address")
    with unit_of_work() as session:
        order = get_order(session, number)
        session.refresh(order)
        _check_changeable(order)
        _check_kept_here(order)
        if by_buyer:
            _check_not_packing(order)
        old = dict(order.address or {})
        if old == new:
            return order
        moved = session.execute(
            update(Order)
            .execution_options(synchronize_session=False)
            .where(Order.id == order.id, Order.status == order.status)
            .values(address=new, updated_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        if moved != 1:  # it moved on (paid, cancelled) since we read it
            session.refresh(order)
            raise InvalidTransition(number, order.status, "change_address")
        reprint = session.scalar(select(PackingSlip.times).where(PackingSlip.order_id == order.id))
        if reprint and by_buyer:  # printed while the buyer was asking: packing began
            _check_not_packing(order)
        changes = session.scalar(
            select(func.count())
            .select_from(OrderEvent)
            .where(OrderEvent.order_id == order.id, OrderEvent.note == ADDRESS_CHANGED)
        )
        if reprint:
            session.execute(delete(PackingSlip).where(PackingSlip.order_id == order.id))
        session.refresh(order)
        record_in_place(
            session,
            order,
            actor=actor,
            note=ADDRESS_CHANGED,
            topic=TOPIC,
            extra={
                "address": new,
                "previous_address": old,
                "slip_reprint": bool(reprint),
                # Who asked: the buyer on their own order page, or the shop (staff, an API
                # key), whose change the buyer is told of. The change's number tells one
                # message from the next.
                "changed_by": "buyer" if by_buyer else "shop",
                "change": int(changes or 0) + 1,
            },
            detail={"previous_address": old, "slips_printed": reprint or 0},
        )
        return order


def changeable(order: Order, *, by_buyer: bool = False) -> bool:
    """Whether the order page (staff's, or the buyer's with ``by_buyer``) offers to change
    ``order``'s address."""
    try:
        _check_changeable(order)
        _check_kept_here(order)
        if by_buyer:
            _check_not_packing(order)
    except (InvalidTransition, ValidationError):
        return False
    return True


def _check_not_packing(order: Order) -> None:
    """Refuse the buyer an order the warehouse has begun to pack (its slip is printed)."""
    printed = current_session().scalar(
        select(PackingSlip.order_id).where(PackingSlip.order_id == order.id)
    )
    if printed is not None:
        raise ValidationError(
            f"order {order.number} is being packed: the shop changes its address now",
            reason="address_packing",
        )


def _check_changeable(order: Order) -> None:
    if order.status not in CHANGEABLE:
        raise InvalidTransition(order.number, order.status, "change_address")
    if any(line.shipped_quantity for line in order.lines):
        raise ValidationError(
            f"order {order.number}: part of it has shipped to the address it has",
            reason="address_shipped",
        )


def _check_kept_here(order: Order) -> None:
    """Refuse an order whose address a marketplace or an ERP system keeps."""
    bound = (
        current_session()
        .execute(
            select(Channel.name, ChannelOrder.direction)
            .join(Channel, Channel.id == ChannelOrder.channel_id)
            .where(ChannelOrder.order_id == order.id)
            .order_by(ChannelOrder.id)
        )
        .first()
    )
    if bound is None:
        return
    channel, direction = bound
    if direction == "import":
        raise ValidationError(
            f"order {order.number} came from {channel}: the buyer changes its address there",
            reason="address_on_channel",
            detail={"channel": channel},
        )
    raise ValidationError(
        f"order {order.number} went to {channel}, which ships it: change the address there",
        reason="address_in_erp",
        detail={"channel": channel},
    )
