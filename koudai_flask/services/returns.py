"""Parcels that came back: what an order shipped goes back on the shelf it left.

A full refund of a shipped order may say the goods came back (the back office's "the
parcel came back", the API's ``restock``); both refund paths, through the payment provider
(``backoffice``) and recorded for a channel's own payment (``platform_actions``), call this.
"""

from __future__ import annotations

from sqlalchemy import select

from koudai_flask.errors import ValidationError
from koudai_flask.models import Location, Order, Reservation, Sku
from koudai_flask.services import inventory
from koudai_flask.services.transaction import current_session


def check_full(number: str, value: int, left: int) -> None:
    """Refuse to restock with a refund of ``value`` when ``left`` was refundable: only a
    full refund says the whole parcel came back."""
    if value != left:
        raise ValidationError(
            f"order {number}: goods go back on the shelf with a full refund only",
            reason="restock_partial",
        )


def restock_shipped(order: Order, refund_no: str) -> dict[str, int]:
    """Put what ``order`` shipped back where it left from; returns the units per SKU."""
    shipped = (
        current_session()
        .execute(
            select(Reservation.id, Sku.code, Location.code, Reservation.quantity)
            .join(Sku, Sku.id == Reservation.sku_id)
            .join(Location, Location.id == Reservation.location_id)
            .where(Reservation.order_id == order.id, Reservation.status == "committed")
            .order_by(Reservation.id)
        )
        .all()
    )
    returned: dict[str, int] = {}
    for reservation_id, code, location, quantity in shipped:
        inventory.adjust(
            code,
            quantity,
            reason="return",
            source="refund",
            reference=order.number,
            idempotency_key=f"{refund_no}:return:{reservation_id}",
            location=location,
        )
        returned[code] = returned.get(code, 0) + quantity
    return returned
