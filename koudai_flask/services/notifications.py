"""Telling the buyer: paid, shipped, delivered and refunded, on every channel we know them by.

An order event becomes one ``Notification`` row per reachable, configured channel
(:func:`plan`), unique per (order, event, channel) so a replayed event plans nothing new.
Each row is sent by its own job (:func:`send`), which first claims the row with one
conditional UPDATE (pending|failed → sending): of two runs of the same job, one sends and
the other sees the claim and stops. The rows are the log staff read (:func:`for_order`)
and act on (:func:`resend`).
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from flask import current_app, url_for
from flask_babel import force_locale
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from koudai_flask.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.i18n import carrier_label, status_label
from koudai_flask.jobs.dispatch import enqueue
from koudai_flask.models import (
    AuditEntry,
    Customer,
    CustomerIdentity,
    MessageTemplate,
    Notification,
    Order,
    Payment,
    Refund,
    Shipment,
)
from koudai_flask.models.base import utcnow
from koudai_flask.notifications import CHANNELS, EVENTS, render, sms
from koudai_flask.notifications.delivery import Outgoing, deliver
from koudai_flask.services import staff, theme
from koudai_flask.services.orders import get_order
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.notifications")

# A send may claim a row that waits or whose last attempt failed; never one being sent.
CLAIMABLE = ("pending", "failed")
RESEND_ACTION = "notification.resend"
_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# -- planning --------------------------------------------------------------------------------


def plan(order_number: str, event: str) -> list[Notification]:
    """Create the pending notifications of one order event; returns all of that event's rows.

    Idempotent: a second call (a replayed outbox event, or a concurrent one) adds nothing.
    """
    _check_event(event)
    for attempt in (1, 2):
        try:
            with unit_of_work() as session:
                order = get_order(session, order_number)
                planned = {
                    n.channel
                    for n in session.scalars(
                        select(Notification).where(
                            Notification.order_id == order.id, Notification.event == event
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
                                recipient=recipient,
                                status="pending",
                            )
                        )
                session.flush()
                return _rows(session, order.id, event)
        except IntegrityError:
            # A concurrent plan of the same event committed first; look again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _rows(session: Session, order_id: int, event: str) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.order_id == order_id, Notification.event == event)
            .order_by(Notification.id)
            .execution_options(populate_existing=True)
        )
    )


def reachable(session: Session, order: Order, event: str) -> list[tuple[str, str]]:
    """(channel, recipient) for each channel that is configured and knows this buyer."""
    config = current_app.config
    customer = session.get(Customer, order.customer_id) if order.customer_id else None
    known: dict[str, str] = {}
    if customer is not None:
        # The newest identity of each kind wins (e.g. the openid of the latest login).
        for identity in session.scalars(
            select(CustomerIdentity)
            .where(CustomerIdentity.customer_id == customer.id)
            .order_by(CustomerIdentity.id.desc())
        ):
            known.setdefault(identity.kind, identity.value)
    found: list[tuple[str, str]] = []
    openid = known.get("wechat_openid")
    if config["KOUDAI_WECHAT"] and openid and _wechat_template_id(session, event):
        found.append(("wechat", openid))
    phone = (
        (customer.phone if customer else None)
        or known.get("phone")
        or (order.address or {}).get("phone")
    )
    if config["KOUDAI_SMS"] and phone:
        found.append(("sms", str(phone).strip()))
    email = (customer.email if customer else None) or known.get("email")
    if config["KOUDAI_MAIL"] and email:
        found.append(("email", email.strip()))
    return found


def _wechat_template_id(session: Session, event: str) -> str | None:
    return session.scalar(
        select(MessageTemplate.wechat_template_id).where(
            MessageTemplate.event == event, MessageTemplate.channel == "wechat"
        )
    )


# -- sending ---------------------------------------------------------------------------------


def send(notification_id: int) -> str:
    """Send one notification unless it is sent or being sent (a job); returns its status.

    A temporary failure is recorded and re-raised, so the job layer retries; a permanent
    one (an unfollowed account, a refused address, a missing setting) is recorded and not
    retried: sending it again needs a person (:func:`resend`).
    """
    with unit_of_work() as session:
        claimed = session.execute(
            update(Notification)
            .execution_options(synchronize_session=False)
            .where(Notification.id == notification_id, Notification.status.in_(CLAIMABLE))
            .values(status="sending", attempts=Notification.attempts + 1)
        ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        status = current_session().scalar(
            select(Notification.status).where(Notification.id == notification_id)
        )
        current_session().rollback()
        return status or "missing"
    try:
        with unit_of_work() as session:
            outgoing = _prepare(session, notification_id)
        # No transaction is held while the channel's server answers.
        message_id = deliver(outgoing)
    except (PermanentFailure, ValidationError) as exc:
        _record_failure(notification_id, exc)
        log.warning("notification %s failed for good: %s", notification_id, _describe(exc))
        return "failed"
    except Exception as exc:
        _record_failure(notification_id, exc)
        raise _retryable(notification_id, exc) from None
    with unit_of_work() as session:
        session.execute(
            update(Notification)
            .execution_options(synchronize_session=False)
            .where(Notification.id == notification_id, Notification.status == "sending")
            .values(
                status="sent",
                provider_message_id=message_id[:64],
                sent_at=utcnow(),
                last_error=None,
            )
        )
    log.info("notification %s sent by %s", notification_id, outgoing.channel)
    return "sent"


def _describe(exc: BaseException) -> str:
    """An error for the log and the ``last_error`` column: no phone numbers, no URLs."""
    return sms.mask_phones_in(f"{type(exc).__name__}: {exc}")[:500]


def _retryable(notification_id: int, exc: Exception) -> ConnectorError:
    """The same kind of error with a masked message, for the job layer to retry.

    Job layers log what they catch, and a provider's error may quote a phone number (an
    SMS gateway's URL) or a token (a WeChat URL): only the masked text goes on. The
    traceback, which holds no values, is logged for unexpected errors.
    """
    text = f"notification {notification_id}: {_describe(exc)}"
    if isinstance(exc, RateLimited):
        return RateLimited(text, retry_after=exc.retry_after)
    if isinstance(exc, AuthExpired):
        return AuthExpired(text)
    if not isinstance(exc, ConnectorError):
        log.error("%s\n%s", text, "".join(traceback.format_tb(exc.__traceback__)).rstrip())
    return TemporaryFailure(text)


def _record_failure(notification_id: int, exc: BaseException) -> None:
    session = current_session()
    session.rollback()
    with unit_of_work() as session:
        session.execute(
            update(Notification)
            .execution_options(synchronize_session=False)
            .where(Notification.id == notification_id, Notification.status == "sending")
            .values(status="failed", last_error=_describe(exc))
        )


def _prepare(session: Session, notification_id: int) -> Outgoing:
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
        context = order_context(order, notification.event)
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
        client_msg_id=f"kd{notification.id}r{_resend_count(session, notification.id)}",
    )


def order_context(order: Order, event: str) -> dict[str, Any]:
    """The template variables for one order event (see ``render.VARIABLES``)."""
    session = current_session()
    # Queried, not read from the relationships: the session may hold this order from
    # before it shipped or was refunded.
    shipment = session.scalar(
        select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id.desc())
    )
    refunded = session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(Refund.order_id == order.id)
    )
    paid = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.order_id == order.id)
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
        "event": event,
    }


def order_url(number: str) -> str:
    """The buyer's order page as an absolute URL; empty when no URL can be built here.

    In a request the host name comes from it; in a worker Flask needs ``SERVER_NAME``.
    """
    try:
        return url_for("koudai_shop.order_detail", number=number, _external=True)
    except (RuntimeError, BuildError):
        return ""


def _resend_count(session: Session, notification_id: int) -> int:
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
        generation = _resend_count(session, notification_id)
    enqueue(send, notification_id, job_id=f"notify-{notification_id}-resend-{generation}")
    session = current_session()
    fresh = session.get(Notification, notification_id)
    assert fresh is not None
    session.refresh(fresh)
    return fresh


def save_template(
    event: str,
    channel: str,
    *,
    subject: str = "",
    body: str = "",
    wechat_template_id: str | None = None,
    actor: str = "system",
) -> MessageTemplate:
    """Save the words of one (event, channel) message; a template that cannot render is
    refused with ``ValidationError`` (it is tried on sample data). Empty parts mean the
    built-in words."""
    _check_event(event)
    if channel not in CHANNELS:
        raise ValidationError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    template_id = (wechat_template_id or "").strip() or None
    if template_id is not None and (channel != "wechat" or not _TEMPLATE_ID.match(template_id)):
        raise ValidationError(
            "wechat_template_id is for WeChat only: the id (letters, digits, - and _) from "
            "the Official Account's template library",
            {"wechat_template_id": ["invalid"]},
        )
    locale = current_app.config["KOUDAI_DEFAULT_LOCALE"]
    default = render.default_wording(event, channel, locale)
    render.check(event, channel, render.Wording(subject or default.subject, body or default.body))
    values = {"subject": subject, "body": body, "wechat_template_id": template_id}
    for attempt in (1, 2):
        try:
            with unit_of_work() as session:
                row = session.scalar(
                    select(MessageTemplate).where(
                        MessageTemplate.event == event, MessageTemplate.channel == channel
                    )
                )
                before = None
                if row is None:
                    row = MessageTemplate(event=event, channel=channel)
                    session.add(row)
                else:
                    before = {key: getattr(row, key) for key in values}
                for key, value in values.items():
                    setattr(row, key, value)
                session.flush()
                staff.audit(actor, "template.save", "message_template", str(row.id), before, values)
                return row
        except IntegrityError:
            if attempt == 2:  # two first saves at once: the second updates the first's row
                raise
    raise AssertionError("unreachable")


def _check_event(event: str) -> None:
    if event not in EVENTS:
        raise ValidationError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")


# -- outbox ----------------------------------------------------------------------------------


def on_order_event(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler of ``order.paid|shipped|delivered|refunded``: plan, then one job each.

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
    failed = 0
    for notification in plan(payload["number"], event):
        if notification.status not in CLAIMABLE:
            continue
        try:
            enqueue(send, notification.id, job_id=f"notify-{notification.id}")
        except Exception as exc:
            log.warning(
                "notification %s (%s) not sent: %s",
                notification.id,
                notification.channel,
                _describe(exc),
            )
            failed += 1
    if failed:
        raise TemporaryFailure(f"order {payload['number']}: {failed} notification(s) not sent yet")
