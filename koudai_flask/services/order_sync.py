"""Orders both ways between our order engine and the channels, through order bindings.

- In (marketplaces): a channel's order, already mapped to a :class:`RemoteOrder`, becomes
  ours (``import_order``): placed with the channel's prices (reserving our stock), paid when
  the buyer paid there (the hold no longer expires), cancelled when it closed there (the
  stock goes back, once). The binding keeps the channel's last modified time, and an import
  not newer than it is skipped, so a message that arrives late or twice changes nothing.
  The seller's memo and flag come with it (``channel_memos.mirror``), the buyer's message
  goes into a new order's note.
- Out (ERPs): our paid order as an :class:`OrderExport` (``order_export``), and the binding
  of the id the ERP gave it (``record_export``).
- Shipments: one of our channel orders shipped here goes back to its channel
  (``shipment_to_push`` / ``record_shipment_pushed``); a shipment made in an ERP ships our
  order (``apply_remote_shipment``), which in turn is pushed to the marketplace it came from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from koudai_flask.connectors.base import OrderExport, RemoteOrder, RemoteShipment
from koudai_flask.errors import InvalidTransition, KoudaiError, ValidationError
from koudai_flask.models import ChannelListing, ChannelOrder, Order, Sku
from koudai_flask.models.base import utcnow
from koudai_flask.services import channel_memos, channel_refunds, order_states, orders
from koudai_flask.services.channels import get as get_channel
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.sync")

# The payment provider of an order a marketplace's buyer paid there: its refunds are made
# there too (services.channel_refunds mirrors them).
CHANNEL_PROVIDER = "channel"
NOTE_LIMIT = 500  # schemas.orders.PlaceOrderInput.note

# What an imported order's state may become, by the remote state: the actions to take in turn.
_ACTIONS = {
    "pending_payment": (),
    "paid": ("pay",),
    "shipped": ("pay",),
    "completed": ("pay",),
    "cancelled": ("cancel",),
    "refunded": (),  # services.channel_refunds: cancelled if never paid here, else refunded
}


class UnmappedLine(KoudaiError):
    """A channel order line whose item/SKU is bound to none of our SKUs."""

    http_status = 422


@dataclass(frozen=True)
class ImportResult:
    outcome: str  # created | updated | unchanged | stale | skipped
    number: str | None = None


def _binding(channel_id: int, external_id: str) -> ChannelOrder | None:
    return current_session().scalar(
        select(ChannelOrder).where(
            ChannelOrder.channel_id == channel_id, ChannelOrder.external_id == external_id
        )
    )


def _sku_code(channel_id: int, item_id: str, sku_id: str, merchant_code: str) -> str:
    session = current_session()
    code = session.scalar(
        select(Sku.code)
        .join(ChannelListing, ChannelListing.sku_id == Sku.id)
        .where(
            ChannelListing.channel_id == channel_id,
            ChannelListing.external_item_id == item_id,
            ChannelListing.external_sku_id == (sku_id or ""),
        )
    )
    if code is None and merchant_code:
        code = session.scalar(select(Sku.code).where(Sku.code == merchant_code))
    if code is None:
        raise UnmappedLine(
            f"item {item_id} SKU {sku_id or '-'} ({merchant_code or 'no merchant code'}) is "
            "bound to none of our SKUs; map it on the channel's SKU mapping page"
        )
    return code


def import_order(channel_name: str, remote: RemoteOrder) -> ImportResult:
    """Make a channel's order ours, or bring ours up to its state; idempotent."""
    session = current_session()
    channel = get_channel(channel_name)
    channel_id = channel.id
    binding = _binding(channel_id, remote.external_id)
    last = binding.remote_modified if binding is not None else None
    if last is not None and remote.modified <= last:
        session.rollback()
        return ImportResult("stale")
    existing = session.scalar(
        select(Order).where(Order.channel == channel_name, Order.external_id == remote.external_id)
    )
    if existing is None and remote.status in ("cancelled", "refunded"):
        session.rollback()  # closed before we ever saw it: no stock was ever held for it
        _bind(channel_id, None, remote)
        return ImportResult("skipped")
    codes = [
        _sku_code(channel_id, line.external_item_id, line.external_sku_id, line.sku_code)
        for line in remote.lines
    ]
    lines = [
        {"sku": code, "quantity": line.quantity, "unit_price": line.price}
        for code, line in zip(codes, remote.lines, strict=True)
    ]
    session.rollback()
    buyer_id = _buyer(channel.kind, remote.buyer) if existing is None else None
    order = existing or orders.place(
        channel=channel_name,
        lines=lines,
        customer=buyer_id,
        external_id=remote.external_id,
        idempotency_key=f"channel:{channel_name}:{remote.external_id}",
        shipping_fee=remote.shipping_fee,
        note=_note(channel.kind, remote),
        actor=channel_refunds.channel_actor(channel_name),
    )
    number, status, total = order.number, order.status, order.total
    outcome = "created" if existing is None else "unchanged"
    for action in _ACTIONS.get(remote.status, ()):
        if _apply(action, channel_name, number, status, total, remote):
            outcome = "updated" if outcome == "unchanged" else outcome
    if channel_refunds.mirror(channel_name, number, remote, codes):
        outcome = "updated" if outcome == "unchanged" else outcome
    # Before the binding moves on: a memo lost to a crash here comes again with the trade.
    if channel_memos.mirror(channel_name, number, remote):
        outcome = "updated" if outcome == "unchanged" else outcome
    _bind(channel_id, number, remote)
    return ImportResult(outcome, number)


def _note(channel_kind: str, remote: RemoteOrder) -> str:
    """An imported order's note: whose it is, then what the buyer wrote with it (买家留言),
    cut to the 500 characters a note holds."""
    note = f"{channel_kind} buyer {remote.buyer}".strip()
    message = remote.buyer_message.strip()
    if message:
        note = f"{note}: {message}"
    return note if len(note) <= NOTE_LIMIT else note[: NOTE_LIMIT - 1] + "…"


def _buyer(channel_kind: str, buyer: str) -> int | None:
    """The customer of a marketplace buyer (one CRM profile per Taobao nick)."""
    if channel_kind != "taobao" or not buyer.strip():
        return None
    from koudai_flask.services.identities import link_identity

    try:
        return link_identity("taobao_nick", buyer, name=buyer)
    except ValidationError:  # a nick we cannot store: import the order without a buyer
        log.warning("channel order with an unusable buyer nick; imported without a customer")
        return None


def _apply(
    action: str, channel_name: str, number: str, status: str, total: int, remote: RemoteOrder
) -> bool:
    actor = channel_refunds.channel_actor(channel_name)
    try:
        if action == "pay" and status == "pending_payment":
            orders.mark_paid(
                number,
                amount=total,
                transaction_id=f"{channel_name}:{remote.external_id}",
                provider=CHANNEL_PROVIDER,
                actor=actor,
            )
            return True
        if action == "cancel" and status == "pending_payment":
            orders.cancel(number, reason=f"closed on {channel_name}", actor=actor)
            return True
    except InvalidTransition:
        # A concurrent import moved it first; the binding below still records the state.
        log.info("order %s already moved on by a concurrent import", number)
    if action == "cancel" and status not in ("pending_payment", "cancelled"):
        log.warning(
            "order %s is %s here but closed on %s: handle the refund in the back office",
            number,
            status,
            channel_name,
        )
    return False


def _bind(channel_id: int, number: str | None, remote: RemoteOrder) -> None:
    with unit_of_work() as session:
        binding = _binding(channel_id, remote.external_id)
        if number is None:
            return  # nothing of ours to bind; a later paid import creates the order
        if binding is None:
            order_id = session.scalar(select(Order.id).where(Order.number == number))
            assert order_id is not None
            binding = ChannelOrder(
                channel_id=channel_id,
                order_id=order_id,
                external_id=remote.external_id,
                direction="import",
            )
            session.add(binding)
        if binding.remote_modified is None or remote.modified > binding.remote_modified:
            binding.remote_modified = remote.modified
            binding.remote_status = remote.remote_status[:40]
        binding.synced_at = utcnow()


# -- out: our orders to an ERP ---------------------------------------------------------------


def order_export(number: str) -> OrderExport:
    """One of our orders as plain data for an ERP."""
    session = current_session()
    try:
        order = order_states.get_order(session, number)
        return OrderExport(
            number=order.number,
            channel=order.channel,
            placed_at=order.created_at,
            total=order.total,
            shipping_fee=order.shipping_fee,
            lines=tuple(
                {
                    "sku": line.sku_code,
                    "name": line.title,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                }
                for line in order.lines
            ),
            address=dict(order.address or {}),
            buyer=order.customer.name if order.customer is not None else "",
        )
    finally:
        session.rollback()


def is_exported(channel_name: str, number: str) -> bool:
    session = current_session()
    try:
        channel = get_channel(channel_name)
        return (
            session.scalar(
                select(ChannelOrder.id)
                .join(Order, Order.id == ChannelOrder.order_id)
                .where(ChannelOrder.channel_id == channel.id, Order.number == number)
            )
            is not None
        )
    finally:
        session.rollback()


def record_export(channel_name: str, number: str, external_id: str) -> None:
    """Bind our order to the id the ERP gave it (a binding write: exports nothing)."""
    bind(channel_name, number, external_id, direction="export")


def record_sold_there(channel_name: str, number: str, external_id: str) -> None:
    """Bind an order a channel sold and created through the API to the channel's id, as an
    import is bound: its shipment then goes back to the channel like a Taobao trade's."""
    bind(channel_name, number, external_id, direction="import")


def bind(channel_name: str, number: str, external_id: str, *, direction: str) -> None:
    """Our order ↔ the channel's id for it, once; a second call changes nothing (nor does one
    that loses a race with another: the unique binding is already there)."""
    try:
        _add_binding(channel_name, number, external_id, direction)
    except IntegrityError:
        current_session().rollback()


def _add_binding(channel_name: str, number: str, external_id: str, direction: str) -> None:
    with unit_of_work() as session:
        channel = get_channel(channel_name)
        order = order_states.get_order(session, number)
        binding = session.scalar(
            select(ChannelOrder).where(
                ChannelOrder.channel_id == channel.id, ChannelOrder.order_id == order.id
            )
        )
        if binding is None:
            session.add(
                ChannelOrder(
                    channel_id=channel.id,
                    order_id=order.id,
                    external_id=str(external_id)[:64],
                    direction=direction,
                    synced_at=utcnow(),
                )
            )


# -- shipments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentPush:
    external_id: str
    carrier: str
    tracking_number: str


def shipment_to_push(channel_name: str, number: str) -> ShipmentPush | None:
    """The first shipment of a channel's order, if it is not pushed back there yet."""
    session = current_session()
    try:
        channel = get_channel(channel_name)
        row = session.execute(
            select(ChannelOrder, Order)
            .join(Order, Order.id == ChannelOrder.order_id)
            .where(ChannelOrder.channel_id == channel.id, Order.number == number)
        ).first()
        if row is None:
            return None
        binding, order = row
        if binding.direction != "import" or binding.shipment_pushed_at is not None:
            return None
        if not order.shipments:
            return None
        shipment = order.shipments[0]
        return ShipmentPush(binding.external_id, shipment.carrier, shipment.tracking_number)
    finally:
        session.rollback()


def record_shipment_pushed(channel_name: str, external_id: str) -> None:
    with unit_of_work():
        binding = _binding(get_channel(channel_name).id, external_id)
        if binding is not None:
            binding.shipment_pushed_at = utcnow()


def apply_remote_shipment(channel_name: str, shipment: RemoteShipment) -> bool:
    """Ship our order as the ERP did; False when it was already shipped with that waybill."""
    session = current_session()
    get_channel(channel_name)
    order = order_states.get_order(session, shipment.order_number)
    if any(
        s.carrier == shipment.carrier and s.tracking_number == shipment.tracking_number
        for s in order.shipments
    ):
        session.rollback()
        return False
    session.rollback()
    orders.ship(
        shipment.order_number,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        actor=channel_refunds.channel_actor(channel_name),
    )
    return True


__all__ = [
    "ImportResult",
    "ShipmentPush",
    "UnmappedLine",
    "apply_remote_shipment",
    "import_order",
    "is_exported",
    "order_export",
    "record_export",
    "record_shipment_pushed",
    "shipment_to_push",
]
