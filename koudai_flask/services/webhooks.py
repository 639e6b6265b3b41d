"""Webhook subscriptions: endpoints that receive signed POSTs of the shop's events.

A subscription names a URL, the public events it wants and a signing secret. The secret is
kept as Fernet ciphertext keyed from the app's ``SECRET_KEY`` (HKDF-SHA256, a salt of its
own) and shown only when it is made: at creation and when it is rotated. URLs are checked
(:func:`koudai_flask.services.webhook_wire.check_url`) when saved and again before every
request. Every change is audited; each public function is one transaction.

The events are the shop's outbox topics under stable public names (:data:`TOPIC_EVENTS`);
sending lives in :mod:`koudai_flask.services.webhook_delivery`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import delete, func, select

from koudai_flask.config import config_value
from koudai_flask.errors import ConfigError, NotFound, ValidationError
from koudai_flask.models import WebhookDelivery, WebhookSubscription
from koudai_flask.models.base import utcnow
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session, unit_of_work
from koudai_flask.services.webhook_wire import check_url

# Outbox topic -> public event name. The public names are a contract with receivers: an
# internal topic may be renamed, these may not.
TOPIC_EVENTS: dict[str, str] = {
    "order.placed": "order.created",
    "order.paid": "order.paid",
    "order.slip_printed": "order.slip_printed",
    "order.address_changed": "order.address_changed",
    "order.partially_shipped": "order.partially_shipped",
    "order.shipped": "order.shipped",
    "order.delivered": "order.delivered",
    "order.completed": "order.completed",
    "order.cancelled": "order.cancelled",
    "order.partially_refunded": "order.partially_refunded",
    "order.refunded": "order.refunded",
    "order.refunding": "order.refund_requested",
    "order.refund_declined": "order.refund_declined",
    "order.refund_settled": "order.refund_settled",
    "order.refund_withdrawn": "order.refund_withdrawn",
    "order.return_agreed": "order.return_agreed",
    "order.return_sent": "order.return_sent",
    "order.return_arrived": "order.return_arrived",
    "order.memo_changed": "order.memo_changed",
    "stock.changed": "stock.changed",
    "product.created": "product.created",
    "product.updated": "product.updated",
    "product.archived": "product.archived",
    "shipping_template.created": "shipping_template.created",
    "shipping_template.updated": "shipping_template.updated",
    "shipping_template.deleted": "shipping_template.deleted",
    "customer.created": "customer.created",
    "customer.tagged": "customer.tagged",
    "customer.merged": "customer.merged",
    "customer.split": "customer.split",
    "review.created": "review.created",
}
EVENTS: tuple[str, ...] = tuple(TOPIC_EVENTS.values())
PING = "ping"
SECRET_PREFIX = "whsec_"
_SALT = b"koudai-webhook-secrets"
_INFO = b"koudai webhook signing secrets v1"


@dataclass(frozen=True)
class CreatedSubscription:
    """A new subscription and its secret in clear, the only time it is available."""

    subscription: WebhookSubscription
    secret: str


# -- secrets ---------------------------------------------------------------------------------


def _cipher() -> Fernet:
    raw = current_app.config.get("SECRET_KEY")
    if not raw:
        raise ConfigError("SECRET_KEY is empty: set it before creating webhook subscriptions")
    key = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(key)
    return Fernet(base64.urlsafe_b64encode(derived))


def _seal(secret: str) -> str:
    return _cipher().encrypt(secret.encode("utf-8")).decode("ascii")


def unseal(sealed: str) -> str:
    """The signing secret in clear, for signing; a changed SECRET_KEY raises ``ConfigError``."""
    try:
        return _cipher().decrypt(sealed.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise ConfigError(
            "a webhook secret cannot be decrypted (SECRET_KEY changed?); rotate the "
            "subscription's secret"
        ) from None


def _new_secret(given: str | None) -> str:
    if given is None:
        return SECRET_PREFIX + secrets.token_urlsafe(24)
    if (
        not isinstance(given, str)
        or not 16 <= len(given) <= 200
        or not given.isascii()
        or any(ch.isspace() or not ch.isprintable() for ch in given)
    ):
        raise ValidationError(
            "the webhook secret must be 16 to 200 printable ASCII characters without spaces",
            {"secret": ["invalid"]},
            reason="webhook_secret",
        )
    return given


# -- validation ------------------------------------------------------------------------------


def clean_events(events: Any) -> list[str]:
    """The chosen public events in their canonical order; unknown or none is refused."""
    if isinstance(events, str) or not isinstance(events, Iterable):
        raise ValidationError("events must be a list of event names", {"events": ["invalid"]})
    chosen = [str(e) for e in events]
    unknown = sorted(set(chosen) - set(EVENTS))
    if unknown:
        raise ValidationError(
            f"unknown webhook event(s) {', '.join(map(repr, unknown))}; known: {', '.join(EVENTS)}",
            {"events": [f"unknown: {', '.join(unknown)}"]},
        )
    if not chosen:
        raise ValidationError(
            "choose at least one event", {"events": ["required"]}, reason="webhook_events"
        )
    return [e for e in EVENTS if e in chosen]


def clean_url(url: Any) -> str:
    url = url.strip() if isinstance(url, str) else url
    check_url(url, allow_private=config_value("WEBHOOKS_ALLOW_PRIVATE"))
    return str(url)


def _description(value: Any) -> str:
    text = (value or "").strip() if isinstance(value, str | None) else None
    if text is None or len(text) > 200:
        raise ValidationError(
            "the description must be text of at most 200 characters",
            {"description": ["invalid"]},
            reason="description_long",
        )
    return text


def _snapshot(sub: WebhookSubscription) -> dict[str, Any]:
    """What the audit keeps of a subscription: never the secret."""
    return {
        "url": sub.url,
        "events": list(sub.events),
        "active": sub.active,
        "description": sub.description,
        "secret_hint": sub.secret_hint,
    }


# -- subscriptions ---------------------------------------------------------------------------


def create_subscription(
    url: str,
    events: Iterable[str],
    *,
    owner_user_id: str,
    secret: str | None = None,
    description: str = "",
    actor: str | None = None,
) -> CreatedSubscription:
    """Subscribe ``url`` to ``events``; returns it with its secret (shown this once)."""
    checked_url = clean_url(url)
    chosen = clean_events(events)
    text = _description(description)
    clear = _new_secret(secret)
    with unit_of_work() as session:
        sub = WebhookSubscription(
            url=checked_url,
            events=chosen,
            secret_sealed=_seal(clear),
            secret_hint=clear[-4:],
            description=text,
            active=True,
            consecutive_failures=0,
            owner_user_id=str(owner_user_id),
        )
        session.add(sub)
        session.flush()
        staff.audit(
            actor or str(owner_user_id),
            "webhook.create",
            "webhook",
            str(sub.id),
            None,
            _snapshot(sub),
        )
    return CreatedSubscription(sub, clear)


def list_subscriptions() -> list[WebhookSubscription]:
    return list(
        current_session().scalars(
            select(WebhookSubscription)
            .order_by(WebhookSubscription.id)
            .execution_options(populate_existing=True)
        )
    )


def get_subscription(subscription_id: int) -> WebhookSubscription:
    sub = current_session().get(WebhookSubscription, subscription_id, populate_existing=True)
    if sub is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return sub


def update_subscription(
    subscription_id: int,
    *,
    url: str | None = None,
    events: Iterable[str] | None = None,
    description: str | None = None,
    actor: str,
) -> WebhookSubscription:
    """Change a subscription's URL, events or description; None leaves a value as it is."""
    checked_url = clean_url(url) if url is not None else None
    chosen = clean_events(events) if events is not None else None
    text = _description(description) if description is not None else None
    with unit_of_work():
        sub = get_subscription(subscription_id)
        before = _snapshot(sub)
        if checked_url is not None:
            sub.url = checked_url
        if chosen is not None:
            sub.events = chosen
        if text is not None:
            sub.description = text
        staff.audit(actor, "webhook.update", "webhook", str(sub.id), before, _snapshot(sub))
    return sub


def set_active(subscription_id: int, active: bool, *, actor: str) -> WebhookSubscription:
    """Disable a subscription, or enable it again (its failure count starts over).

    Deliveries that were waiting resume once it is enabled: the sweep sends the due ones.
    """
    with unit_of_work():
        sub = get_subscription(subscription_id)
        before = _snapshot(sub)
        sub.active = active
        if active:
            sub.consecutive_failures = 0
            sub.disabled_reason = None
            sub.disabled_at = None
        elif sub.disabled_at is None:
            sub.disabled_reason = f"disabled by {actor}"
            sub.disabled_at = utcnow()
        action = "webhook.enable" if active else "webhook.disable"
        staff.audit(actor, action, "webhook", str(sub.id), before, _snapshot(sub))
    return sub


def rotate_secret(subscription_id: int, *, actor: str, secret: str | None = None) -> str:
    """A new signing secret, in force at once; returns it (shown this once)."""
    clear = _new_secret(secret)
    with unit_of_work():
        sub = get_subscription(subscription_id)
        before = _snapshot(sub)
        sub.secret_sealed = _seal(clear)
        sub.secret_hint = clear[-4:]
        staff.audit(actor, "webhook.rotate_secret", "webhook", str(sub.id), before, _snapshot(sub))
    return clear


def delete_subscription(subscription_id: int, *, actor: str = "system") -> None:
    """Remove a subscription and its delivery log."""
    with unit_of_work() as session:
        sub = get_subscription(subscription_id)
        before = _snapshot(sub)
        session.execute(
            delete(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == sub.id)
            .execution_options(synchronize_session=False)
        )
        session.delete(sub)
        staff.audit(actor, "webhook.delete", "webhook", str(subscription_id), before, None)


# -- the delivery log ------------------------------------------------------------------------


def deliveries(
    subscription_id: int | None = None,
    *,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[WebhookDelivery]:
    """Deliveries newest first; ``before_id`` pages back through older ones."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(max(1, limit))
    if subscription_id is not None:
        query = query.where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    return list(current_session().scalars(query.execution_options(populate_existing=True)))


def get_delivery(delivery_id: int) -> WebhookDelivery:
    delivery = current_session().get(WebhookDelivery, delivery_id, populate_existing=True)
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    return delivery


def delivery_counts() -> dict[tuple[int, str], int]:
    """(subscription id, status) -> number of deliveries, for the list page."""
    rows = current_session().execute(
        select(WebhookDelivery.subscription_id, WebhookDelivery.status, func.count()).group_by(
            WebhookDelivery.subscription_id, WebhookDelivery.status
        )
    )
    return {(sub_id, status): int(count) for sub_id, status, count in rows}


def redeliver(delivery_id: int, *, actor: str) -> WebhookDelivery:
    """Send a delivery again, whatever its status (staff, or the API); audited.

    The same event id goes out, so a receiver that already handled it can tell.
    """
    from koudai_flask.jobs.webhooks import schedule

    with unit_of_work() as session:
        delivery = get_delivery(delivery_id)
        sub = session.get(WebhookSubscription, delivery.subscription_id)
        assert sub is not None
        if not sub.active:
            raise ValidationError(
                "this webhook subscription is disabled: enable it before sending again",
                reason="webhook_disabled",
            )
        before = {"status": delivery.status, "attempts": delivery.attempts}
        delivery.status = "pending"
        delivery.next_attempt_at = utcnow()
        staff.audit(actor, "webhook.redeliver", "webhook_delivery", str(delivery.id), before, None)
    schedule(delivery_id, generation=f"r{delivery.attempts}")
    return get_delivery(delivery_id)


def ping(subscription_id: int, *, actor: str) -> WebhookDelivery:
    """Send a ``ping`` event to check an endpoint and its signature check; audited."""
    from koudai_flask.jobs.webhooks import schedule

    with unit_of_work() as session:
        sub = get_subscription(subscription_id)
        if not sub.active:
            raise ValidationError(
                "this webhook subscription is disabled: enable it first", reason="webhook_disabled"
            )
        now = utcnow()
        delivery = WebhookDelivery(
            subscription_id=sub.id,
            event_id=f"ping_{secrets.token_hex(8)}",
            topic=PING,
            payload={"subscription_id": sub.id, "events": list(sub.events)},
            occurred_at=now,
            status="pending",
            attempts=0,
            next_attempt_at=now,
        )
        session.add(delivery)
        session.flush()
        staff.audit(actor, "webhook.ping", "webhook", str(sub.id), None, {"delivery": delivery.id})
    schedule(delivery.id)
    return get_delivery(delivery.id)
