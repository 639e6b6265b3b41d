"""What one buyer notification says: its order's template variables, rendered for its channel.

Read by the send job of :mod:`koudai_flask.services.notifications` inside a short
transaction, before any network call: the result is a plain
:class:`~koudai_flask.notifications.delivery.Outgoing` that the channel adapter delivers.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from flask_babel import force_locale
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from koudai_flask.connectors.errors import PermanentFailure
from koudai_flask.errors import NotFound
from koudai_flask.i18n import carrier_label, status_label
from koudai_flask.models import (
    AuditEntry,
    MessageTemplate,
    Notification,
    Order,
    OrderEvent,
    Payment,
    Refund,
    Shipment,
)
from koudai_flask.models.orders import OUTBOUND, RETURN_AGREED
from koudai_flask.notifications import render
from koudai_flask.notifications.delivery import Outgoing
from koudai_flask.services import theme
from koudai_flask.services.order_states import last_declined
from koudai_flask.services.transaction import current_session

# The audit action of a staff resend; their count makes each resend a new WeChat message.
RESEND_ACTION = "notification.resend"


def prepare(session: Session, notification_id: int) -> Outgoing:
    """Read and render one notification into plain values."""
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"unknown notification {notification_id}")
    order = session.get(Order, notification.order_id)
    assert order is not None
    session.refresh(order)
    template = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.event == notification.event,
            MessageTemplate.channel == notification.channel,
        )
    )
    locale = current_app.config["KOUDAI_DEFAULT_LOCALE"]
    wording = render.effective_wording(notification.event, notification.channel, template, locale)
    with force_locale(locale):  # the shop's language, whoever's request this runs in
        context = order_context(order, notification.event, notification.occurrence)
    template_id = template.wechat_template_id if template else None
    if notification.channel == "wechat" and not template_id:
        raise PermanentFailure(f"no WeChat template id for {notification.event!r} messages")
    return Outgoing(
        id=notification.id,
        channel=notification.channel,
        recipient=notification.recipient,
        message=render.render(notification.channel, wording, context),
        wechat_template_id=template_id,
        # WeChat sends one message per openid + client_msg_id (§3.3): stable across the
        # retries of one send, new for each resend staff ask for.
        client_msg_id=f"kd{notification.id}r{resend_count(session, notification.id)}",
    )


def order_context(order: Order, event: str, occurrence: int = 0) -> dict[str, Any]:
    """The template variables for one order event (see ``render.VARIABLES``); a partial
    refund's ``occurrence`` is its refund's id: its message gives what was refunded up to
    that refund, also when it is sent again later."""
    session = current_session()
    # Queried, not read from the relationships: the session may hold this order from
    # before it shipped or was refunded.
    shipment = session.scalar(
        select(Shipment)
        .where(Shipment.order_id == order.id, Shipment.direction == OUTBOUND)
        .order_by(Shipment.id.desc())
    )
    refunds = select(func.coalesce(func.sum(Refund.amount), 0)).where(Refund.order_id == order.id)
    if event == "partially_refunded" and occurrence:
        refunds = refunds.where(Refund.id <= occurrence)  # refunded up to this one
    refunded = session.scalar(refunds)
    paid = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.order_id == order.id)
    )
    declined = last_declined(
        session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        ).all()
    )
    return {
        "shop_name": theme.current().name,
        "order_number": order.number,
        "total": render.yuan(order.total),
        "refund_amount": render.yuan(int(refunded or paid or 0)),
        # The event's label, not the order's state now: a "paid" message that runs after
        # the parcel left still says paid.
        "status": status_label(event),
        "carrier": carrier_label(shipment.carrier) if shipment else "",
        "tracking_number": shipment.tracking_number if shipment else "",
        "order_url": order_url(order.number),
        # Why staff declined the last refund request, for the refund_declined message.
        "reason": declined.note if declined is not None else "",
        # Where the seller, agreeing to a return, told the buyer to send the goods.
        "return_address": _address_text(session, order.id),
        # Where the order goes now, for the address_changed message.
        "address": _order_address(order),
        "event": event,
    }


def _order_address(order: Order) -> str:
    """The order's address as one line: recipient, phone, then the address itself."""
    parts = order.address or {}
    place = "".join(str(parts.get(key) or "") for key in ("province", "city", "district", "street"))
    return " ".join(str(part) for part in (parts.get("name"), parts.get("phone"), place) if part)


def _address_text(session: Session, order_id: int) -> str:
    """The address of the seller's latest agreement to a return, as one line of text."""
    agreed = session.scalar(
        select(OrderEvent)
        .where(OrderEvent.order_id == order_id, OrderEvent.note.startswith(RETURN_AGREED))
        .order_by(OrderEvent.id.desc())
        .limit(1)
    )
    address = agreed.return_address if agreed is not None else None
    if not address:
        return ""
    return f"{address['name']} {address['phone']} {address['address']}"


def order_url(number: str) -> str:
    """The buyer's order page as an absolute URL; empty when no URL can be built here.

    In a request the host name comes from it; in a worker Flask needs ``SERVER_NAME``.
    """
    try:
        return url_for("koudai_shop.order_detail", number=number, _external=True)
    except (RuntimeError, BuildError):
        return ""


def resend_count(session: Session, notification_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.object_type == "notification",
                AuditEntry.object_id == str(notification_id),
                AuditEntry.action == RESEND_ACTION,
            )
        )
        or 0
    )
