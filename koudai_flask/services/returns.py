"""Goods that are not kept: lines refunded before they ship, parcels that came back.

A refund may name the units it is for (``lines``, ``{sku: quantity}``): units not shipped
yet are taken first and their held stock goes back on the shelf; the rest were shipped and
go back on the shelf only when the seller says the parcel came back (``restock``). A full
refund may say the whole parcel came back (the back office's "the parcel came back", the
API's ``restock``). Every refund path (through the payment provider in ``backoffice``,
recorded for a channel's own payment in ``platform_actions``, mirrored from a marketplace in
``channel_refunds``) ends in ``refunds.refund``, which calls this in its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, select
from sqlalchemy.orm import Session

from koudai_flask.connectors.logistics.carriers import is_known
from koudai_flask.errors import ValidationError
from koudai_flask.models import (
    Location,
    Order,
    OrderEvent,
    Reservation,
    Shipment,
    Sku,
    StockMovement,
    TrackingEvent,
)
from koudai_flask.models.orders import OUTBOUND, RETURN, RETURN_AGREED, RETURN_SENT
from koudai_flask.services import inventory
from koudai_flask.services.shipping import TRACKING_NUMBER, end_line_hold
from koudai_flask.services.transaction import current_session, unit_of_work


def check_full(number: str, value: int, left: int) -> None:
    """Refuse to restock with a refund of ``value`` when ``left`` was refundable: only a
    full refund says the whole parcel came back."""
    if value != left:
        raise ValidationError(
            f"order {number}: goods go back on the shelf with a full refund only, or with "
            "the units refunded named (lines)",
            reason="restock_partial",
        )


def check_lines(order: Order, lines: Mapping[str, object]) -> dict[str, int]:
    """``lines`` as ``{sku: units}``, each a whole number of units the order can still
    refund; SKUs asked for 0 units are left out."""
    by_code = {line.sku_code: line for line in order.lines}
    wanted: dict[str, int] = {}
    for code, quantity in lines.items():
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValidationError(
                f"{code}: the quantity must be a whole number",
                reason="refund_quantity",
                detail={"sku": code},
            )
        line = by_code.get(code)
        if line is None:
            raise ValidationError(
                f"order {order.number} has no line {code}",
                reason="refund_unknown_line",
                detail={"sku": code},
            )
        if quantity > line.refundable:
            raise ValidationError(
                f"{code}: only {line.refundable} can be refunded",
                reason="refund_too_many_units",
                detail={"sku": code, "left": line.refundable},
            )
        if quantity:
            wanted[code] = quantity
    if not wanted:
        raise ValidationError("choose at least one item to refund", reason="refund_no_lines")
    return wanted


def lines_amount(order: Order, lines: Mapping[str, int]) -> int:
    """What refunding ``lines`` gives back by default: their units at the price paid, or
    everything left (shipping included) when they are every unit not refunded yet."""
    left = order.paid_amount - order.refunded_amount
    if sum(lines.values()) == sum(line.refundable for line in order.lines):
        return left
    prices = {line.sku_code: line.unit_price for line in order.lines}
    return min(left, sum(prices[code] * quantity for code, quantity in lines.items()))


def take_back(
    session: Session, order: Order, lines: Mapping[str, int], *, refund_no: str, restock: bool
) -> dict[str, int]:
    """Mark ``lines`` refunded on ``order``: units not shipped yet are released from their
    hold; shipped ones go back on the shelf with ``restock``. Returns the units restocked."""
    restocked: dict[str, int] = {}
    for line in order.lines:
        quantity = lines.get(line.sku_code, 0)
        if not quantity:
            continue
        unshipped = min(quantity, line.to_ship)
        if unshipped:
            end_line_hold(
                session, order, line, unshipped, "released", key=f"{refund_no}:release:{line.id}"
            )
        returned = quantity - unshipped
        if restock and returned:
            _put_back(order, line.sku_id, line.sku_code, returned, f"{refund_no}:return:{line.id}")
            restocked[line.sku_code] = returned
        line.refunded_quantity += quantity
    session.flush()
    return restocked


def restock_shipped(order: Order, refund_no: str) -> dict[str, int]:
    """Put what ``order`` shipped back where it left from, but for units a line refund put
    back already; returns the units per SKU."""
    session = current_session()
    shipped = session.execute(
        select(Reservation.id, Reservation.sku_id, Sku.code, Location.code, Reservation.quantity)
        .join(Sku, Sku.id == Reservation.sku_id)
        .join(Location, Location.id == Reservation.location_id)
        .where(Reservation.order_id == order.id, Reservation.status == "committed")
        .order_by(Reservation.id)
    ).all()
    already = _returned(session, order)
    returned: dict[str, int] = {}
    for reservation_id, sku_id, code, location, quantity in shipped:
        back = min(quantity, already.get(sku_id, 0))
        already[sku_id] = already.get(sku_id, 0) - back
        if quantity - back <= 0:
            continue
        inventory.adjust(
            code,
            quantity - back,
            reason="return",
            source="refund",
            reference=order.number,
            idempotency_key=f"{refund_no}:return:{reservation_id}",
            location=location,
        )
        returned[code] = returned.get(code, 0) + quantity - back
    return returned


def _returned(session: Session, order: Order) -> dict[int, int]:
    """Units of ``order`` already back on the shelf, by SKU id."""
    rows = session.execute(
        select(StockMovement.sku_id, func.sum(StockMovement.on_hand_delta))
        .where(StockMovement.reason == "return", StockMovement.reference == order.number)
        .group_by(StockMovement.sku_id)
    ).all()
    return {sku_id: int(units or 0) for sku_id, units in rows}


def _put_back(order: Order, sku_id: int, code: str, units: int, key: str) -> None:
    """``units`` of a shipped SKU back at the location they left from."""
    location = current_session().scalar(
        select(Location.code)
        .join(Reservation, Reservation.location_id == Location.id)
        .where(
            Reservation.order_id == order.id,
            Reservation.sku_id == sku_id,
            Reservation.status == "committed",
        )
        .limit(1)
    )
    inventory.adjust(
        code,
        units,
        reason="return",
        source="refund",
        reference=order.number,
        idempotency_key=key,
        location=location,
    )


def send_back(number: str, *, carrier: str, tracking_number: str, actor: str = "buyer") -> None:
    """The buyer has posted the goods of a return (退货退款) the seller agreed to
    (``return_not_agreed`` before): the parcel's waybill goes on the request for staff, who
    refund once it arrives, and is tracked like a parcel we sent
    (``order.return_sent`` subscribes it to Kuaidi100). Given again, the latest one counts: a
    corrected waybill replaces the one before, which is no longer followed; once the parcel
    was signed for, nothing changes (``return_arrived``)."""
    from koudai_flask.services import order_states

    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    if not is_known(carrier):
        raise ValidationError(f"unknown carrier {carrier!r}", reason="unknown_carrier")
    if not TRACKING_NUMBER.fullmatch(tracking_number):
        raise ValidationError(
            f"tracking number {tracking_number!r} is not one a carrier prints",
            reason="tracking_format",
            detail={"tracking_number": tracking_number},
        )
    with unit_of_work() as session:
        order, asked = _return_asked(session, number)
        if _agreed(session, order, asked) is None:
            raise ValidationError(
                f"order {number}: the seller has not agreed to the return yet",
                reason="return_not_agreed",
            )
        check_not_arrived(session, order)
        waybill = {"carrier": carrier, "tracking_number": tracking_number}
        _track_return(session, order, asked.created_at, carrier, tracking_number)
        order_states.record_in_place(
            session,
            order,
            actor=actor,
            note=f"{RETURN_SENT} {carrier} {tracking_number}",
            topic="order.return_sent",
            extra=waybill,
            detail={"return_waybill": waybill},
        )


def agree(number: str, *, actor: str = "system", address: dict[str, str] | None = None) -> Order:
    """The seller agrees to take the goods of a return back (同意退货) and tells the buyer
    where to send them: ``address`` (checked; all parts empty counts as none), else the
    shop's return address (``no_return_address`` when there is none either). Only then may
    the buyer give the parcel's waybill. Agreeing again changes nothing."""
    from koudai_flask.services import order_states, theme

    address = (
        theme.check_return_address(address) if address else None
    ) or theme.current().return_address
    if not address:
        raise ValidationError(
            "set the shop's return address before agreeing to a return",
            reason="no_return_address",
        )
    with unit_of_work() as session:
        order, asked = _return_asked(session, number)
        if asked.by_channel:
            raise ValidationError(
                f"order {number}: the return was asked on {order.channel}, answer it there",
                reason="refund_on_channel",
                detail={"channel": order.channel},
            )
        if _agreed(session, order, asked) is None:
            order_states.record_in_place(
                session,
                order,
                actor=actor,
                note=f"{RETURN_AGREED} {address['address']}",
                topic="order.return_agreed",
                extra={"return_address": dict(address)},
                detail={"return_address": dict(address)},
            )
        return order


def _return_asked(session: Session, number: str) -> tuple[Order, OrderEvent]:
    """The order, fresh and locked (two clicks on "agree", or a waybill given while staff
    agree, apply one after the other), and the refund request it waits on, which must send
    goods back."""
    from koudai_flask.services import order_states

    order = order_states.get_order(session, number)
    session.refresh(order, with_for_update=True)
    asked = order_states.refund_request(session, order)
    if asked is None or not asked.returning:
        raise ValidationError(f"order {number} waits on no return", reason="no_return_asked")
    return order, asked


def _agreed(session: Session, order: Order, asked: OrderEvent) -> int | None:
    """The timeline entry of the seller's agreement to the return ``asked`` requested."""
    return session.scalar(
        select(OrderEvent.id)
        .where(
            OrderEvent.order_id == order.id,
            OrderEvent.id > asked.id,
            OrderEvent.note.startswith(RETURN_AGREED),
        )
        .limit(1)
    )


def check_not_arrived(session: Session, order: Order) -> None:
    """Refuse to change a request whose return parcel was signed for (``return_arrived``):
    the goods are at the shop, and staff answer it now."""
    if session.scalar(select(Order.id).where(Order.id == order.id, goods_arrived())):
        raise ValidationError(
            f"order {order.number}: the goods sent back have arrived", reason="return_arrived"
        )


def goods_arrived() -> ColumnElement[bool]:
    """Orders waiting on a refund request whose return parcel was signed for: the goods are
    at the shop, and staff check them and refund (the back office's list and dashboard)."""
    asked_at = (
        select(func.max(OrderEvent.created_at))
        .where(
            OrderEvent.order_id == Order.id,
            OrderEvent.to_status == "refunding",
            OrderEvent.from_status != "refunding",
        )
        .scalar_subquery()
    )
    return and_(
        Order.status == "refunding",
        exists().where(
            Shipment.order_id == Order.id,
            Shipment.direction == RETURN,
            Shipment.status == "delivered",
            Shipment.created_at >= asked_at,
        ),
    )


def _track_return(
    session: Session, order: Order, asked_at: datetime, carrier: str, tracking_number: str
) -> None:
    """The return parcel's row, replacing this request's earlier one not yet arrived; a
    waybill already on a parcel (ours to the buyer, or another return) is refused."""
    taken = session.scalar(
        select(Shipment).where(
            Shipment.carrier == carrier, Shipment.tracking_number == tracking_number
        )
    )
    if taken is not None and not (taken.order_id == order.id and taken.direction == RETURN):
        ours = taken.direction == OUTBOUND
        raise ValidationError(
            f"{carrier} {tracking_number} is the waybill of "
            + ("a parcel the shop sent" if ours else "another return"),
            reason="return_waybill_ours" if ours else "tracking_taken",
            detail={"carrier": carrier, "tracking_number": tracking_number},
        )
    earlier = [
        parcel_id
        for parcel_id in session.scalars(
            select(Shipment.id).where(
                Shipment.order_id == order.id,
                Shipment.direction == RETURN,
                Shipment.status != "delivered",
                Shipment.created_at >= asked_at,
            )
        )
        if taken is None or parcel_id != taken.id
    ]
    if earlier:  # a waybill the buyer corrected: its trace is of someone else's parcel
        session.execute(delete(TrackingEvent).where(TrackingEvent.shipment_id.in_(earlier)))
        session.execute(delete(Shipment).where(Shipment.id.in_(earlier)))
    if taken is None:
        session.add(
            Shipment(
                order_id=order.id,
                carrier=carrier,
                tracking_number=tracking_number,
                direction=RETURN,
            )
        )
    session.flush()


def return_address(order: Order) -> dict[str, str] | None:
    """Where the seller, agreeing to the return ``order`` waits on, told the buyer to send it."""
    return (order.open_refund_request or {}).get("return_address")


def return_waybill(order: Order) -> dict[str, str] | None:
    """The waybill of the goods coming back for the refund request ``order`` waits on."""
    return (order.open_refund_request or {}).get("return_waybill")
