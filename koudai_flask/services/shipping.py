"""Shipping an order, whole or in parts: shipments, their lines and the stock that leaves.

An order moves from ``paid`` to ``shipped`` with the shipment that sends its last unit;
earlier partial shipments keep it ``paid`` and appear in its timeline and tracking.
"""

from __future__ import annotations

import re

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.models import (
    Order,
    OrderLine,
    Product,
    Reservation,
    Shipment,
    ShipmentLine,
    Sku,
)
from koudai_flask.models.orders import PARTIAL_SHIPMENT
from koudai_flask.services import inventory
from koudai_flask.services.order_states import get_order, record_in_place, transition
from koudai_flask.services.transaction import unit_of_work


def remaining(order: Order) -> dict[str, int]:
    """What is still to ship, by SKU code: neither shipped nor refunded."""
    return {line.sku_code: line.to_ship for line in order.lines if line.to_ship}


# A tracking number as carriers print them; staff and the API are held to it.
TRACKING_NUMBER = re.compile(r"[A-Za-z0-9-]{4,64}")


def ship(
    number: str,
    *,
    carrier: str,
    tracking_number: str,
    lines: dict[str, int] | None = None,
    actor: str = "system",
) -> Order:
    """Send ``lines`` (``{sku: quantity}``; None: everything left) in one parcel."""
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    if not carrier or not tracking_number:
        raise ValidationError(
            "carrier and tracking_number are required", reason="shipment_incomplete"
        )
    with unit_of_work() as session:
        order = get_order(session, number)
        session.refresh(order)
        if order.status != "paid":
            raise InvalidTransition(order.number, order.status, "ship")
        left = remaining(order)
        wanted = dict(left) if lines is None else _check_lines(lines, left)
        if not wanted:
            raise ValidationError("nothing is left to ship", reason="nothing_to_ship")
        if session.scalar(
            select(Shipment.id).where(
                Shipment.carrier == carrier, Shipment.tracking_number == tracking_number
            )
        ):
            raise ValidationError(
                f"tracking number {carrier} {tracking_number} is already used",
                reason="tracking_taken",
                detail={"carrier": carrier, "tracking_number": tracking_number},
            )
        shipment = Shipment(order_id=order.id, carrier=carrier, tracking_number=tracking_number)
        session.add(shipment)
        session.flush()
        by_code = {line.sku_code: line for line in order.lines}
        for code, quantity in sorted(wanted.items(), key=lambda item: by_code[item[0]].sku_id):
            line = by_code[code]
            _send_line(session, order, line, quantity, shipment)
        session.flush()
        note = f"{carrier} {tracking_number}"
        parcel = {"carrier": carrier, "tracking_number": tracking_number}
        if not remaining(order):
            transition(session, order, "ship", actor=actor, note=note, extra=parcel)
        else:
            record_in_place(
                session,
                order,
                actor=actor,
                note=f"{PARTIAL_SHIPMENT} {note}",
                topic="order.partially_shipped",
                extra=parcel,
            )
        session.flush()
        return order


def _check_lines(lines: dict[str, int], left: dict[str, int]) -> dict[str, int]:
    wanted = {code: quantity for code, quantity in lines.items() if quantity}
    if not wanted:
        raise ValidationError("choose at least one line to ship", reason="nothing_to_ship")
    for code, quantity in wanted.items():
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValidationError(
                f"{code}: the quantity must be a whole number",
                reason="ship_quantity",
                detail={"sku": code},
            )
        if quantity > left.get(code, 0):
            raise ValidationError(
                f"{code}: only {left.get(code, 0)} left to ship",
                reason="ship_too_many",
                detail={"sku": code, "left": left.get(code, 0)},
            )
    return wanted


def ship_if_all_sent(session: Session, order: Order, *, actor: str) -> None:
    """A paid order with something shipped and nothing left to ship (the rest refunded)
    is shipped: it moves on instead of waiting for a parcel that will never leave."""
    if (
        order.status == "paid"
        and not remaining(order)
        and any(line.shipped_quantity for line in order.lines)
    ):
        transition(session, order, "ship", actor=actor, note="the rest was refunded")


def end_line_hold(
    session: Session, order: Order, line: OrderLine, quantity: int, outcome: str, *, key: str
) -> None:
    """End ``quantity`` of the stock held for ``line``: ``committed`` (shipped) or
    ``released`` (back on the shelf). A line whose hold is gone already is left alone."""
    held = session.scalar(
        select(Reservation).where(
            Reservation.order_id == order.id,
            Reservation.sku_id == line.sku_id,
            Reservation.status == "active",
        )
    )
    if held is not None:
        inventory.close_part(session, held, quantity, outcome, key=key)


def _send_line(
    session: Session, order: Order, line: OrderLine, quantity: int, shipment: Shipment
) -> None:
    session.add(ShipmentLine(shipment_id=shipment.id, order_line_id=line.id, quantity=quantity))
    line.shipped_quantity += quantity
    end_line_hold(session, order, line, quantity, "committed", key=f"ship:{shipment.id}:{line.id}")
    product_id = session.scalar(select(Sku.product_id).where(Sku.id == line.sku_id))
    session.execute(
        update(Product)
        .execution_options(synchronize_session=False)
        .where(Product.id == product_id)
        .values(sales_count=Product.sales_count + quantity)
    )
