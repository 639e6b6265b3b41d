"""Delivering webhooks: fan-out of outbox events, one attempt at a time, retries, disabling.

- **Fan-out.** An outbox event of a webhook topic becomes one ``WebhookDelivery`` per active
  subscription that chose its public event, unique per (subscription, event id); the event
  id is ``evt_<outbox event id>``, the same however often the event is handled.
- **Attempts.** A delivery is claimed with one conditional UPDATE (pending and due, of an
  active subscription → sending), so two runs of the same job send it once. No transaction
  is held while the receiver answers.
- **Retries.** A 2xx delivers. No answer, a 3xx (redirects are not followed), a 5xx, a 408
  or a 429 is tried again after ``KOUDAI_WEBHOOKS_RETRY_BASE`` doubling per attempt (at most
  6 hours; a longer ``Retry-After`` wins), up to ``KOUDAI_WEBHOOKS_MAX_ATTEMPTS``; any other
  4xx, and an address refused at send time, fails the delivery at once.
- **Disabling.** ``KOUDAI_WEBHOOKS_DISABLE_AFTER`` failed attempts in a row disable the
  subscription; its owner is told (the ``webhook_disabled`` signal, the log, and an e-mail
  when ``KOUDAI_MAIL`` is set).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask.signals import Namespace
from flask_babel import force_locale
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from koudai_flask.config import config_value
from koudai_flask.errors import ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import OutboxEvent, StaffMember, WebhookDelivery, WebhookSubscription
from koudai_flask.models.base import utcnow
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session, unit_of_work
from koudai_flask.services.webhook_wire import (
    AddressRefused,
    AttemptResult,
    check_url,
    encode_body,
    post,
    signed_headers,
)
from koudai_flask.services.webhooks import TOPIC_EVENTS, unseal

log = logging.getLogger("koudai_flask.webhooks")

MAX_BACKOFF = 6 * 3600.0
# A job scheduled for a delivery's retry may start a moment before its due time.
DUE_SKEW = timedelta(seconds=2)

signals = Namespace()
#: Sent with ``subscription_id``, ``url``, ``reason`` and ``owner_user_id`` when a
#: subscription is disabled after failing too often; connect a receiver to tell someone.
webhook_disabled = signals.signal("koudai-webhook-disabled")


@dataclass(frozen=True)
class Outcome:
    """Where one run left a delivery; ``retry_in`` is set when another attempt is planned."""

    status: str
    attempts: int = 0
    retry_in: float | None = None


# -- fan-out ---------------------------------------------------------------------------------


def fan_out(topic: str, payload: dict[str, Any]) -> list[int]:
    """The new deliveries of the outbox event(s) of ``topic`` with this payload, not yet done.

    Outbox handlers get the topic and the payload, not the event's row; the row is the one
    of this topic with this payload that is still being handled (more than one only for
    identical events, each of which gets its deliveries either way).
    """
    event = TOPIC_EVENTS.get(topic)
    if event is None:
        return []
    for attempt in (1, 2):
        try:
            with unit_of_work() as session:
                subscribers = [
                    sub.id
                    for sub in session.scalars(
                        select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
                    )
                    if event in sub.events
                ]
                if not subscribers:
                    return []
                rows = [
                    (row.id, row.created_at)
                    for row in session.execute(
                        select(OutboxEvent.id, OutboxEvent.payload, OutboxEvent.created_at).where(
                            OutboxEvent.topic == topic,
                            OutboxEvent.status.in_(("pending", "enqueued")),
                        )
                    )
                    if row.payload == payload
                ]
                if not rows:
                    log.warning("webhooks: no outbox event of %s with this payload", topic)
                    return []
                return _add_deliveries(subscribers, event, payload, rows)
        except IntegrityError:
            if attempt == 2:  # a concurrent fan-out of the same event committed first
                raise
    raise AssertionError("unreachable")


def _add_deliveries(
    subscribers: list[int],
    event: str,
    payload: dict[str, Any],
    rows: list[tuple[int, datetime]],
) -> list[int]:
    session = current_session()
    event_ids = {f"evt_{row_id}": created for row_id, created in rows}
    existing = {
        (sub_id, event_id)
        for sub_id, event_id in session.execute(
            select(WebhookDelivery.subscription_id, WebhookDelivery.event_id).where(
                WebhookDelivery.subscription_id.in_(subscribers),
                WebhookDelivery.event_id.in_(sorted(event_ids)),
            )
        )
    }
    now = utcnow()
    added = [
        WebhookDelivery(
            subscription_id=sub_id,
            event_id=event_id,
            topic=event,
            payload=payload,
            occurred_at=created,
            status="pending",
            attempts=0,
            next_attempt_at=now,
        )
        for event_id, created in event_ids.items()
        for sub_id in subscribers
        if (sub_id, event_id) not in existing
    ]
    session.add_all(added)
    session.flush()
    return [delivery.id for delivery in added]


# -- one attempt -----------------------------------------------------------------------------


def attempt(delivery_id: int, *, now: datetime | None = None) -> Outcome:
    """Claim a due delivery, POST it, record the answer; returns where it stands."""
    now = now or utcnow()
    active = select(WebhookSubscription.id).where(WebhookSubscription.active.is_(True))
    with unit_of_work() as session:
        claimed = session.execute(
            update(WebhookDelivery)
            .execution_options(synchronize_session=False)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                or_(
                    WebhookDelivery.next_attempt_at.is_(None),
                    WebhookDelivery.next_attempt_at <= now + DUE_SKEW,
                ),
                WebhookDelivery.subscription_id.in_(active),
            )
            .values(status="sending", attempts=WebhookDelivery.attempts + 1, last_attempt_at=now)
        ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        status = current_session().scalar(
            select(WebhookDelivery.status).where(WebhookDelivery.id == delivery_id)
        )
        current_session().rollback()
        return Outcome(status or "missing")
    with unit_of_work() as session:
        delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
        assert delivery is not None
        sub = session.get(WebhookSubscription, delivery.subscription_id, populate_existing=True)
        assert sub is not None
        url, sealed = sub.url, sub.secret_sealed
        body = encode_body(
            delivery.event_id, delivery.topic, delivery.occurred_at, delivery.payload
        )
        event_id, topic, attempts = delivery.event_id, delivery.topic, delivery.attempts
    retry = True
    try:
        headers = signed_headers(unseal(sealed), event_id, topic, body)
        target = check_url(url, allow_private=config_value("WEBHOOKS_ALLOW_PRIVATE"))
    except AddressRefused as exc:  # the name points somewhere else now: no retry
        result, retry = AttemptResult(None, None, 0, f"refused: {exc.message}"[:500]), False
    except ValidationError as exc:  # e.g. the name does not resolve (for now)
        result = AttemptResult(None, None, 0, exc.message[:500])
    except Exception as exc:  # a secret that no longer decrypts: nothing to retry
        result, retry = AttemptResult(None, None, 0, f"{type(exc).__name__}: {exc}"[:500]), False
    else:
        try:
            result = post(target, body, headers, config_value("WEBHOOKS_TIMEOUT"))
        except Exception as exc:  # noqa: BLE001 - recorded, and tried again later
            result = AttemptResult(None, None, 0, f"request failed: {type(exc).__name__}")
        retry = result.retryable
    return _record(delivery_id, result, retry=retry, attempts=attempts, now=now)


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    delay = min(MAX_BACKOFF, config_value("WEBHOOKS_RETRY_BASE") * 2 ** max(0, attempts - 1))
    if retry_after is not None:
        delay = max(delay, min(MAX_BACKOFF, retry_after))
    return float(delay)


def _record(
    delivery_id: int, result: AttemptResult, *, retry: bool, attempts: int, now: datetime
) -> Outcome:
    disabled = False
    retry_in: float | None = None
    with unit_of_work() as session:
        delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
        assert delivery is not None
        delivery.response_status = result.status
        delivery.response_body = result.body
        delivery.duration_ms = result.duration_ms
        delivery.error = result.error[:500] if result.error else None
        sub = session.get(WebhookSubscription, delivery.subscription_id, populate_existing=True)
        assert sub is not None
        if result.ok:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                "delivered",
                now,
                None,
            )
            sub.consecutive_failures = 0
        else:
            if retry and attempts < config_value("WEBHOOKS_MAX_ATTEMPTS"):
                retry_in = backoff(attempts, result.retry_after)
                delivery.status = "pending"
                delivery.next_attempt_at = now + timedelta(seconds=retry_in)
            else:
                delivery.status, delivery.next_attempt_at = "failed", None
            session.execute(
                update(WebhookSubscription)
                .execution_options(synchronize_session=False)
                .where(WebhookSubscription.id == sub.id)
                .values(consecutive_failures=WebhookSubscription.consecutive_failures + 1)
            )
            session.refresh(sub)
            if sub.active and sub.consecutive_failures >= config_value("WEBHOOKS_DISABLE_AFTER"):
                disabled = True
                _disable(sub, result, now)
        outcome = Outcome(delivery.status, attempts, retry_in)
        sub_id = sub.id
    if disabled:
        _tell_owner_later(sub_id, now)
    return outcome


def _disable(sub: WebhookSubscription, result: AttemptResult, now: datetime) -> None:
    before = {"active": True, "consecutive_failures": sub.consecutive_failures - 1}
    sub.active = False
    sub.disabled_at = now
    sub.disabled_reason = (
        f"{sub.consecutive_failures} failed attempts in a row; last: {result.error or 'no answer'}"
    )[:300]
    staff.audit(
        "system",
        "webhook.auto_disable",
        "webhook",
        str(sub.id),
        before,
        {"active": False, "reason": sub.disabled_reason},
    )


# -- telling the owner -----------------------------------------------------------------------


def _tell_owner_later(subscription_id: int, disabled_at: datetime) -> None:
    from koudai_flask.jobs.dispatch import enqueue

    job_id = f"webhook-disabled-{subscription_id}-{disabled_at.timestamp():.0f}"
    try:
        enqueue(tell_owner, subscription_id, job_id=job_id)
    except Exception:  # the subscription is disabled either way; the page says why
        log.exception("webhooks: could not tell the owner of subscription %s", subscription_id)


def owner_addresses(sub: WebhookSubscription) -> list[str]:
    """The subscription owner's e-mail, else those of the shop's owners."""
    session = current_session()
    member = session.scalar(select(StaffMember).where(StaffMember.user_id == sub.owner_user_id))
    if member is not None and member.active and member.email:
        return [member.email]
    return sorted(
        email
        for email in session.scalars(
            select(StaffMember.email).where(
                StaffMember.role == "owner", StaffMember.active.is_(True)
            )
        )
        if email
    )


def tell_owner(subscription_id: int) -> int:
    """Tell the owner that a subscription was disabled (a job); returns e-mails sent."""
    session = current_session()
    sub = session.get(WebhookSubscription, subscription_id, populate_existing=True)
    if sub is None or sub.active:
        session.rollback()
        return 0
    url, reason, owner = sub.url, sub.disabled_reason or "", sub.owner_user_id
    recipients = owner_addresses(sub)
    session.rollback()
    log.warning("webhooks: subscription %s (%s) disabled: %s", subscription_id, url, reason)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    webhook_disabled.send(
        app, subscription_id=subscription_id, url=url, reason=reason, owner_user_id=owner
    )
    settings = current_app.config["KOUDAI_MAIL"]
    if not settings or not recipients:
        return 0
    from koudai_flask.notifications.email import mailer_from_config

    with force_locale(current_app.config["KOUDAI_DEFAULT_LOCALE"]):
        subject = _k("A webhook was disabled")
        text = _k(
            "The webhook to %(url)s was disabled after failing repeatedly (%(reason)s). "
            "Fix the receiver, then enable it again in the back office; the deliveries "
            "that were waiting will be sent.",
            url=url,
            reason=reason,
        )
    mailer = mailer_from_config(settings)
    for address in recipients:
        mailer.send(address, subject, text)
    return len(recipients)


# -- sweeping --------------------------------------------------------------------------------


def due(now: datetime | None = None, *, limit: int = 500) -> list[int]:
    """Deliveries of active subscriptions whose next attempt is due, oldest first.

    A delivery left ``sending`` by a worker that died mid-request is made pending again
    first (after twice the timeout and a minute).
    """
    now = now or utcnow()
    stuck = now - timedelta(seconds=2 * config_value("WEBHOOKS_TIMEOUT") + 60)
    active = select(WebhookSubscription.id).where(WebhookSubscription.active.is_(True))
    with unit_of_work() as session:
        session.execute(
            update(WebhookDelivery)
            .execution_options(synchronize_session=False)
            .where(WebhookDelivery.status == "sending", WebhookDelivery.last_attempt_at < stuck)
            .values(status="pending", next_attempt_at=now)
        )
        return list(
            session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookDelivery.subscription_id.in_(active),
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
            )
        )
