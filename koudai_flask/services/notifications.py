"""Telling the buyer: paid, shipped, delivered, refunded and a refund declined, on every
channel we know them by.

An order event becomes one ``Notification`` row per reachable, configured channel
(:func:`plan`), unique per (order, event, channel) so a replayed event plans nothing new.
Each row is sent by its own job (:func:`send`), which first claims the row with one
conditional UPDATE (pending|failed → sending): of two runs of the same job, one sends and
the other sees the claim and stops. The rows are the log staff read (:func:`for_order`)
and act on (:func:`resend`). What a notification says is built by
:mod:`~koudai_flask.services.notification_content`; the shop's own words for it are kept by
:mod:`~koudai_flask.services.message_templates`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from koudai_flask.connectors.errors import TemporaryFailure
from koudai_flask.errors import NotFound
from koudai_flask.jobs.dispatch import enqueue
from koudai_flask.models import (
    Customer,
    CustomerIdentity,
    MessageTemplate,
    Notification,
    Order,
    OrderEvent,
)
from koudai_flask.models.base import utcnow
from koudai_flask.models.orders import ADDRESS_CHANGED
from koudai_flask.notifications import EVENTS, sms
from koudai_flask.services import message_sending, staff
from koudai_flask.services.message_templates import check_event, save_template
from koudai_flask.services.notification_content import (
    RESEND_ACTION,
    order_context,
    order_url,
    prepare,
    resend_count,
)
from koudai_flask.services.order_states import get_order, last_declined
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.notifications")

# A send may claim a row that waits or whose last attempt failed; never one being sent.
CLAIMABLE = ("pending", "failed")


# -- planning --------------------------------------------------------------------------------


def plan(order_number: str, event: str, occurrence: int = 0) -> list[Notification]:
    """Create the pending notifications of one order event; returns all of that event's rows.

    ``occurrence`` tells apart the times of an event that can happen again (a partial
    refund: its refund's id). Idempotent: a second call (a replayed outbox event, or a
    concurrent one) adds nothing.
    """
    check_event(event)
    for attempt in (1, 2):
        try:
            with unit_of_work() as session:
                order = get_order(session, order_number)
                planned = {
                    n.channel
                    for n in session.scalars(
                        select(Notification).where(
                            Notification.order_id == order.id,
                            Notification.event == event,
                            Notification.occurrence == occurrence,
                        )
                    )
                }
                for channel, recipient in reachable(session, order, event):
                    if channel not in planned:
                        session.add(
                            Notification(
                                order_id=order.id,
                                event=event,
                                channel=channel,
                                occurrence=occurrence,
                                recipient=recipient,
                                status="pending",
                            )
                        )
                session.flush()
                return _rows(session, order.id, event, occurrence)
        except IntegrityError:
            # A concurrent plan of the same event committed first; look again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _rows(session: Session, order_id: int, event: str, occurrence: int) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(
                Notification.order_id == order_id,
                Notification.event == event,
                Notification.occurrence == occurrence,
            )
            .order_by(Notification.id)
            .execution_options(populate_existing=True)
        )
    )


def reachable(session: Session, order: Order, event: str) -> list[tuple[str, str]]:
    """(channel, recipient) for each channel that is configured and knows this buyer."""
    config = current_app.config
    customer = session.get(Customer, order.customer_id) if order.customer_id else None
    known = contacts(session, customer)
    found: list[tuple[str, str]] = []
    openid = known.get("wechat_openid")
    if config["KOUDAI_WECHAT"] and openid and _wechat_template_id(session, event):
        found.append(("wechat", openid))
    phone = known.get("phone") or _address_phone(session, order, event)
    if config["KOUDAI_SMS"] and phone:
        found.append(("sms", str(phone).strip()))
    email = known.get("email")
    if config["KOUDAI_MAIL"] and email:
        found.append(("email", email.strip()))
    return found


def _address_phone(session: Session, order: Order, event: str) -> str | None:
    """The phone of the order's address; for a change of address, of the address the
    order was placed with: the one who placed it is told, not whoever the parcel now goes to."""
    address = order.address or {}
    if event == "address_changed":
        first = session.scalar(
            select(OrderEvent.detail)
            .where(OrderEvent.order_id == order.id, OrderEvent.note == ADDRESS_CHANGED)
            .order_by(OrderEvent.id)
            .limit(1)
        )
        address = (first or {}).get("previous_address") or address
    phone = address.get("phone")
    return str(phone) if phone else None


def contacts(session: Session, customer: Customer | None) -> dict[str, str]:
    """How a buyer can be reached: identity kind → value, the newest identity of each kind
    (the openid of the latest login), the customer's own phone and e-mail first."""
    known: dict[str, str] = {}
    if customer is None:
        return known
    if customer.phone:
        known["phone"] = customer.phone
    if customer.email:
        known["email"] = customer.email
    for identity in session.scalars(
        select(CustomerIdentity)
        .where(CustomerIdentity.customer_id == customer.id)
        .order_by(CustomerIdentity.id.desc())
    ):
        known.setdefault(identity.kind, identity.value)
    return known


def _wechat_template_id(session: Session, event: str) -> str | None:
    return session.scalar(
        select(MessageTemplate.wechat_template_id).where(
            MessageTemplate.event == event, MessageTemplate.channel == "wechat"
        )
    )


# -- sending ---------------------------------------------------------------------------------


ROWS = message_sending.MessageKind(
    label="notification",
    model=Notification,
    claimable=CLAIMABLE,
    # A temporary failure is retried by the job layer (a failed row may be claimed again).
    retry_status="failed",
    max_attempts=None,
    prepare=prepare,
    log=log,
    sent_values=lambda outgoing: {"sent_at": utcnow()},
)


def send(notification_id: int) -> str:
    """Send one notification unless it is sent or being sent (a job); returns its status.

    A temporary failure is recorded and re-raised, so the job layer retries; a permanent
    one (an unfollowed account, a refused address, a missing setting) is recorded and not
    retried: sending it again needs a person (:func:`resend`).
    """
    return message_sending.send(ROWS, notification_id)


# -- staff -----------------------------------------------------------------------------------


def for_order(order_number: str) -> list[Notification]:
    """The notification log of one order, oldest first."""
    session = current_session()
    order = get_order(session, order_number)
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.order_id == order.id)
            .order_by(Notification.id)
            .execution_options(populate_existing=True)  # sends commit through UPDATEs
        )
    )


def resend(notification_id: int, *, actor: str) -> Notification:
    """Send a notification again (staff), whatever its status; audited.

    The row is reused (no duplicate in the log): it goes back to pending and a new job
    sends it. Also the way out for a row left ``sending`` by a worker that died mid-send.
    """
    with unit_of_work() as session:
        notification = session.get(Notification, notification_id)
        if notification is None:
            raise NotFound(f"unknown notification {notification_id}")
        before = {"status": notification.status, "attempts": notification.attempts}
        notification.status = "pending"
        notification.last_error = None
        staff.audit(
            actor,
            RESEND_ACTION,
            "notification",
            str(notification_id),
            before,
            {"status": "pending"},
        )
        session.flush()
        generation = resend_count(session, notification_id)
    enqueue(send, notification_id, job_id=f"notify-{notification_id}-resend-{generation}")
    session = current_session()
    fresh = session.get(Notification, notification_id)
    assert fresh is not None
    session.refresh(fresh)
    return fresh


# -- outbox ----------------------------------------------------------------------------------


def on_order_event(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler of ``order.paid|shipped|delivered|refunded|refund_declined``: plan,
    then one job each.

    Inline, a channel that still fails after its retries does not stop the others; an
    error is raised at the end so the outbox keeps the event and the relay sends it again
    (planning adds nothing then, and sent rows are skipped).
    """
    event = topic.partition(".")[2]
    config = current_app.config
    if event not in EVENTS or not (
        config["KOUDAI_WECHAT"] or config["KOUDAI_SMS"] or config["KOUDAI_MAIL"]
    ):
        return
    if event in ("refund_declined", "partially_refunded") and _made_on_channel(
        payload["number"], event
    ):
        return  # the marketplace told its buyer itself; ours would be a second, odd message
    if event == "address_changed" and payload.get("changed_by") == "buyer":
        return  # they did it themselves, on the page that said so
    failed = 0
    # Each partial refund is told on its own (an event written before refunds carried
    # their id counts as the order's first).
    occurrence = (
        int(payload.get("refund_id") or 0)
        if event == "partially_refunded"
        else int(payload.get("change") or 0)  # each change of address is told
        if event == "address_changed"
        else 0
    )
    for notification in plan(payload["number"], event, occurrence):
        if notification.status not in CLAIMABLE:
            continue
        try:
            enqueue(send, notification.id, job_id=f"notify-{notification.id}")
        except Exception as exc:
            log.warning(
                "notification %s (%s) not sent: %s",
                notification.id,
                notification.channel,
                sms.describe_error(exc),
            )
            failed += 1
    if failed:
        raise TemporaryFailure(f"order {payload['number']}: {failed} notification(s) not sent yet")


def _made_on_channel(number: str, event: str) -> bool:
    """The order's last ``event`` (a declined request, a partial refund) was made on a
    marketplace, not by staff."""
    with unit_of_work() as session:
        events = get_order(session, number).events
        if event == "refund_declined":
            last = last_declined(events)
        else:
            last = next((e for e in reversed(events) if e.step == event), None)
        return last is not None and last.by_channel


__all__ = [
    "CLAIMABLE",
    "RESEND_ACTION",
    "for_order",
    "on_order_event",
    "order_context",
    "order_url",
    "plan",
    "contacts",
    "reachable",
    "resend",
    "save_template",
    "send",
]
