"""Outbound webhooks: signed deliveries to a real receiver on 127.0.0.1, retries with back-off,
no retry on a plain 4xx, auto-disable after 15 failures with the owner told, redelivery, pings,
secrets, and the RQ path. The SSRF guard is in test_webhooks_guard."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.wrappers import Request, Response

from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.jobs import schedules
from koudai_flask.jobs import webhooks as webhook_jobs
from koudai_flask.jobs.handlers import WEBHOOK_HANDLER, resolve
from koudai_flask.models import (
    AuditEntry,
    OutboxEvent,
    Refund,
    WebhookDelivery,
    WebhookSubscription,
)
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, inventory, orders, outbox, staff, webhooks
from koudai_flask.services.transaction import unit_of_work
from koudai_flask.services.webhook_delivery import webhook_disabled
from tests.test_notifications import SmtpServer

SECRET = "whsec_test_0123456789abcdef"
OWNER = "staff:boss@shop.cn"


# -- a receiver that checks signatures as the README tells receivers to ------------------------


def verify(secret: str, headers: Any, body: bytes) -> bool:
    timestamp = headers.get("Koudai-Webhook-Timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    signed = timestamp.encode() + b"." + body
    expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("Koudai-Webhook-Signature", ""))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, headers, body), then 200 "ok"."""

    secret: str = SECRET
    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = LoopbackServer(self.wsgi)
        self.url = f"{self.server.url}/hooks/koudai"

    def wsgi(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        ok = verify(self.secret, request.headers, body)
        with self.lock:
            self.received.append(Received(request.path, dict(request.headers), body, ok))
            status, headers, text = self.script.pop(0) if self.script else (200, {}, "ok")
        if not ok:
            status, headers, text = 401, {}, "bad signature"
        return Response(text, status=status, headers=headers)(environ, start_response)

    def answer(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.script.extend((s, headers or {}, f"answer {s}") for s in statuses)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.stop()


@pytest.fixture
def hooked(make_app: Any, database_url: str) -> Iterator[Flask]:
    """Inline jobs, webhooks on, loopback receivers allowed (as in development)."""
    app = make_app(database_url, KOUDAI_WEBHOOKS=True, KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True)
    with app.app_context():
        staff.grant(OWNER, "owner", email="boss@shop.cn", password="correct-horse-battery")
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 50}])
        yield app


def subscribe(receiver: Receiver, *events: str) -> WebhookSubscription:
    created = webhooks.create_subscription(
        receiver.url, list(events), owner_user_id=OWNER, secret=SECRET
    )
    return created.subscription


def rows(subscription_id: int | None = None) -> list[WebhookDelivery]:
    return list(reversed(webhooks.deliveries(subscription_id)))


def paid_order() -> str:
    order = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}])
    orders.mark_paid(order.number, amount=order.total, transaction_id="T-1", provider="offline")
    return order.number


def outbox_id(topic: str) -> int:
    session = get_state().session
    found: int = session.scalar(select(func.max(OutboxEvent.id)).where(OutboxEvent.topic == topic))
    return found


# -- delivery ----------------------------------------------------------------------------------


def test_a_paid_order_reaches_the_receiver_signed(hooked, receiver):
    sub = subscribe(receiver, "order.paid", "order.created")
    number = paid_order()
    assert [r.headers["Koudai-Webhook-Event"] for r in receiver.received] == [
        "order.created",
        "order.paid",
    ]
    assert all(r.verified and r.path == "/hooks/koudai" for r in receiver.received)
    paid = receiver.received[1]
    event_id = f"evt_{outbox_id('order.paid')}"
    assert paid.headers["Koudai-Webhook-Id"] == event_id
    assert paid.headers["Content-Type"] == "application/json"
    document = paid.document
    assert set(document) == {"id", "type", "created_at", "data"}
    assert (document["id"], document["type"]) == (event_id, "order.paid")
    assert document["data"] == {
        "number": number,
        "channel": "web",
        "external_id": None,
        "status": "paid",
        "previous_status": "pending_payment",
        "total": 9900,  # free shipping from 99 yuan
        "customer_id": None,
    }
    assert [
        (d.topic, d.status, d.attempts, d.response_status, d.response_body) for d in rows()
    ] == [
        ("order.created", "delivered", 1, 200, "ok"),
        ("order.paid", "delivered", 1, 200, "ok"),
    ]
    assert get_state().session.get(WebhookSubscription, sub.id).consecutive_failures == 0
    # Handled events are acknowledged as usual.
    statuses = get_state().session.scalars(select(OutboxEvent.status).distinct()).all()
    assert statuses == ["done"]


def test_only_the_chosen_events_of_active_subscriptions_are_sent(hooked, receiver):
    other = Receiver()
    try:
        subscribe(receiver, "order.paid")
        quiet = subscribe(other, "order.paid")
        webhooks.set_active(quiet.id, False, actor=OWNER)
        paid_order()  # also stock.changed (the reservation) and order.created: not chosen
        assert [r.headers["Koudai-Webhook-Event"] for r in receiver.received] == ["order.paid"]
        assert other.received == []
        subscribe(other, "stock.changed")
        inventory.adjust("KET", 5, reason="delivery")
        assert [r.document["data"]["on_hand"] for r in other.received] == [55]
        assert [r.document["data"]["available"] for r in other.received] == [54]
        assert len(receiver.received) == 1
    finally:
        other.server.stop()


def test_a_handled_event_fans_out_once(hooked, receiver):
    subscribe(receiver, "customer.tagged")
    with unit_of_work() as session:
        outbox.record(session, "customer.tagged", {"customer_id": 7, "tag": "vip"})
    event = f"evt_{outbox_id('customer.tagged')}"
    assert [r.headers["Koudai-Webhook-Id"] for r in receiver.received] == [event]
    # The same event handled again (a relay, a retried outbox job) adds no delivery.
    with unit_of_work() as session:
        session.get(OutboxEvent, outbox_id("customer.tagged")).status = "pending"
    resolve(WEBHOOK_HANDLER)("customer.tagged", {"customer_id": 7, "tag": "vip"})
    assert len(receiver.received) == 1
    assert [(d.event_id, d.topic) for d in rows()] == [(event, "customer.tagged")]


def test_customer_events_come_from_the_crm(hooked, receiver):
    from koudai_flask.services import identities, tags

    subscribe(receiver, "customer.created", "customer.tagged")
    customer_id = identities.link_identity("email", "buyer@example.com", name="Mei")
    tags.add_tag(customer_id, "vip", actor_id=OWNER)
    assert [(r.document["type"], r.document["data"]) for r in receiver.received] == [
        ("customer.created", {"customer_id": customer_id}),
        ("customer.tagged", {"customer_id": customer_id, "tag": "vip"}),
    ]
    assert all(r.verified for r in receiver.received)


def test_a_merge_and_its_split_are_sent_to_subscribers(hooked, receiver):
    from koudai_flask.services import identities, merges

    subscribe(receiver, "customer.merged", "customer.split")
    kept = identities.link_identity("email", "kept@example.com", name="Kept")
    folded = identities.link_identity("phone", "13900000077", name="Folded")
    record = merges.merge(OWNER, folded, kept)
    merges.split(OWNER, record.id)
    assert [(r.document["type"], r.document["data"]) for r in receiver.received] == [
        ("customer.merged", {"customer_id": kept, "merged_id": folded, "reason": "manual"}),
        ("customer.split", {"customer_id": kept, "split_id": folded}),
    ]
    assert all(r.verified for r in receiver.received)


def test_without_the_setting_no_event_is_subscribed(make_app, database_url):
    app = make_app(database_url)
    with app.app_context():
        assert not outbox.needs_dispatch("stock.changed")
        assert not outbox.needs_dispatch("order.placed")
        assert WEBHOOK_HANDLER not in [
            f"{h.__module__}:{h.__name__}" for h in get_state().handlers.get("order.paid", [])
        ]
    on = make_app(database_url, KOUDAI_WEBHOOKS=True, KOUDAI_WEBHOOKS_SWEEP_INTERVAL=7)
    with on.app_context():
        for topic in webhooks.TOPIC_EVENTS:
            assert webhook_jobs.on_event in get_state().handlers[topic]
    sweeps = [(f, every) for name, f, every in schedules.periodic_jobs(on) if "webhook" in name]
    assert sweeps == [(webhook_jobs.sweep, 7)]
    assert [name for name, _, _ in schedules.periodic_jobs(app) if "webhook" in name] == []


# -- failures and retries ----------------------------------------------------------------------


def test_failures_are_retried_with_a_doubling_wait(hooked, receiver):
    subscribe(receiver, "order.paid")
    receiver.answer(500, 503)
    paid_order()
    [first] = rows()
    assert (first.status, first.attempts, first.response_status, first.error) == (
        "pending",
        1,
        500,
        "HTTP 500",
    )
    assert first.response_body == "answer 500"
    assert first.next_attempt_at - first.last_attempt_at == timedelta(seconds=60)
    assert webhook_jobs.sweep(first.next_attempt_at - timedelta(seconds=1)) == 0
    assert webhook_jobs.sweep(first.next_attempt_at) == 1
    [second] = rows()
    assert (second.status, second.attempts, second.response_status) == ("pending", 2, 503)
    assert second.next_attempt_at - second.last_attempt_at == timedelta(seconds=120)
    assert webhook_jobs.sweep(second.next_attempt_at) == 1
    [third] = rows()
    assert (third.status, third.attempts, third.response_status, third.error) == (
        "delivered",
        3,
        200,
        None,
    )
    # Every attempt carried the same event id and the same body, each signed afresh.
    assert len({r.headers["Koudai-Webhook-Id"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    assert [r.verified for r in receiver.received] == [True, True, True]
    assert webhooks.get_subscription(first.subscription_id).consecutive_failures == 0


def test_a_4xx_is_not_retried_but_408_and_429_are(hooked, receiver):
    subscribe(receiver, "stock.changed")
    receiver.answer(404)
    inventory.adjust("KET", 1, reason="count")
    receiver.answer(429, headers={"Retry-After": "600"})
    inventory.adjust("KET", 1, reason="count")
    receiver.answer(408)
    inventory.adjust("KET", 1, reason="count")
    found = [(d.status, d.attempts, d.response_status, d.next_attempt_at) for d in rows()]
    assert [row[:3] for row in found] == [
        ("failed", 1, 404),
        ("pending", 1, 429),
        ("pending", 1, 408),
    ]
    assert found[0][3] is None
    waits = [d.next_attempt_at - d.last_attempt_at for d in rows()[1:]]
    assert waits == [timedelta(seconds=600), timedelta(seconds=60)]


def test_a_receiver_that_never_answers_well_is_given_up_after_the_last_attempt(
    make_app, database_url, receiver
):
    app = make_app(
        database_url,
        KOUDAI_WEBHOOKS=True,
        KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True,
        KOUDAI_WEBHOOKS_MAX_ATTEMPTS=3,
    )
    with app.app_context():
        subscribe(receiver, "customer.created")
        receiver.answer(*[502] * 10)
        with unit_of_work() as session:
            outbox.record(session, "customer.created", {"customer_id": 1})
        for _ in range(5):
            [delivery] = rows()
            if delivery.next_attempt_at is not None:
                webhook_jobs.sweep(delivery.next_attempt_at)
        [delivery] = rows()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
        assert len(receiver.received) == 3


def test_a_closed_port_is_a_retryable_failure(hooked, receiver):
    subscribe(receiver, "stock.changed")
    receiver.server.stop()
    inventory.adjust("KET", 1, reason="count")
    [delivery] = rows()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert delivery.error == "connection failed: the receiver could not be reached"


# -- auto-disable --------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


def test_fifteen_failures_in_a_row_disable_it_and_tell_the_owner(
    make_app, database_url, receiver, smtp
):
    app = make_app(
        database_url,
        KOUDAI_WEBHOOKS=True,
        KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True,
        KOUDAI_MAIL={"host": "127.0.0.1", "port": smtp.port, "sender": "shop@example.com"},
    )
    told: list[dict[str, Any]] = []

    def listener(sender: Flask, **extra: Any) -> None:
        told.append(extra)

    with app.app_context(), webhook_disabled.connected_to(listener, app):
        staff.grant(OWNER, "owner", email="boss@shop.cn", password="correct-horse-battery")
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 50}])
        sub = subscribe(receiver, "stock.changed")
        receiver.answer(*[500] * 20)
        for _ in range(14):
            inventory.adjust("KET", 1, reason="count")
        assert webhooks.get_subscription(sub.id).active
        assert webhooks.get_subscription(sub.id).consecutive_failures == 14
        assert told == [] and smtp.state.received == []
        inventory.adjust("KET", 1, reason="count")
        disabled = webhooks.get_subscription(sub.id)
        assert (disabled.active, disabled.consecutive_failures) == (False, 15)
        assert disabled.disabled_reason == "15 failed attempts in a row; last: HTTP 500"
        assert told == [
            {
                "subscription_id": sub.id,
                "url": receiver.url,
                "reason": disabled.disabled_reason,
                "owner_user_id": OWNER,
            }
        ]
        [mail] = smtp.state.received
        assert mail.rcpt_tos == ["boss@shop.cn"]
        assert receiver.url in mail.message.get_content()
        session = get_state().session
        assert (
            session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "webhook.auto_disable", AuditEntry.actor == "system")
            )
            == 1
        )
        # Disabled: a new event makes no delivery, and the waiting ones wait.
        inventory.adjust("KET", 1, reason="count")
        assert len(receiver.received) == 15
        assert len(rows()) == 15
        later = max(d.next_attempt_at for d in rows())
        assert webhook_jobs.sweep(later) == 0
        # Enabled again (the receiver is fixed): the count starts over, the waiting ones go.
        receiver.script.clear()
        webhooks.set_active(sub.id, True, actor=OWNER)
        assert webhooks.get_subscription(sub.id).consecutive_failures == 0
        assert webhook_jobs.sweep(later) == 15
        assert [d.status for d in rows()] == ["delivered"] * 15


# -- redelivery and pings ------------------------------------------------------------------------


def test_staff_can_send_a_delivery_again(hooked, receiver):
    subscribe(receiver, "order.paid")
    receiver.answer(410)
    paid_order()
    [failed] = rows()
    assert (failed.status, failed.response_status) == ("failed", 410)
    again = webhooks.redeliver(failed.id, actor=OWNER)
    assert (again.status, again.attempts, again.response_status) == ("delivered", 2, 200)
    assert receiver.received[0].body == receiver.received[1].body
    webhooks.redeliver(failed.id, actor=OWNER)  # a delivered one may go again too
    assert [r.headers["Koudai-Webhook-Id"] for r in receiver.received] == [failed.event_id] * 3
    audited = get_state().session.scalars(
        select(AuditEntry.object_id).where(AuditEntry.action == "webhook.redeliver")
    )
    assert list(audited) == [str(failed.id), str(failed.id)]
    with pytest.raises(NotFound):
        webhooks.redeliver(999, actor=OWNER)


def test_a_disabled_subscription_is_not_sent_to_by_hand_either(hooked, receiver):
    sub = subscribe(receiver, "order.paid")
    paid_order()
    webhooks.set_active(sub.id, False, actor=OWNER)
    [delivery] = rows()
    with pytest.raises(ValidationError):
        webhooks.redeliver(delivery.id, actor=OWNER)
    with pytest.raises(ValidationError):
        webhooks.ping(sub.id, actor=OWNER)
    assert len(receiver.received) == 1


def test_a_ping_is_signed_and_logged(hooked, receiver):
    sub = subscribe(receiver, "order.paid", "stock.changed")
    delivery = webhooks.ping(sub.id, actor=OWNER)
    assert (delivery.topic, delivery.status, delivery.response_status) == ("ping", "delivered", 200)
    [ping] = receiver.received
    assert ping.verified
    assert ping.document["type"] == "ping"
    assert ping.document["data"] == {
        "subscription_id": sub.id,
        "events": ["order.paid", "stock.changed"],
    }
    assert ping.headers["Koudai-Webhook-Id"] == delivery.event_id


# -- subscriptions and secrets -------------------------------------------------------------------


def test_the_secret_is_shown_once_and_kept_encrypted(hooked, receiver):
    created = webhooks.create_subscription(receiver.url, ["order.paid"], owner_user_id=OWNER)
    assert created.secret.startswith("whsec_") and len(created.secret) == 38
    sub = get_state().session.get(WebhookSubscription, created.subscription.id)
    assert created.secret not in sub.secret_sealed
    assert webhooks.unseal(sub.secret_sealed) == created.secret
    assert sub.secret_hint == created.secret[-4:]
    audit = get_state().session.scalars(select(AuditEntry)).all()
    assert all(created.secret not in json.dumps([a.before, a.after]) for a in audit)
    # A rotated secret signs from the next delivery on; the receiver with the old one refuses.
    new = webhooks.rotate_secret(sub.id, actor=OWNER)
    assert new != created.secret
    receiver.secret = created.secret
    paid_order()
    [delivery] = rows()
    assert (delivery.status, delivery.response_status) == ("failed", 401)
    receiver.secret = new
    assert webhooks.redeliver(delivery.id, actor=OWNER).status == "delivered"


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "choose at least one event"),
        (["order.placed"], "unknown webhook event(s) 'order.placed'"),
        ("order.paid", "events must be a list of event names"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_written(hooked, receiver, events, message):
    with pytest.raises(ValidationError) as info:
        webhooks.create_subscription(receiver.url, events, owner_user_id=OWNER)
    assert info.value.message.startswith(message)
    assert webhooks.list_subscriptions() == []


def test_editing_and_deleting(hooked, receiver):
    sub = subscribe(receiver, "order.paid")
    webhooks.update_subscription(sub.id, events=["stock.changed", "order.created"], actor=OWNER)
    assert webhooks.get_subscription(sub.id).events == ["order.created", "stock.changed"]
    paid_order()
    assert [r.headers["Koudai-Webhook-Event"] for r in receiver.received] == [
        "stock.changed",  # the order's reservation
        "order.created",
    ]
    webhooks.delete_subscription(sub.id, actor=OWNER)
    assert webhooks.list_subscriptions() == []
    assert rows() == []
    with pytest.raises(NotFound):
        webhooks.get_subscription(sub.id)


# -- on RQ ---------------------------------------------------------------------------------------


def test_on_rq_each_attempt_is_a_job_and_a_retry_is_scheduled(
    make_app, database_url, redis_url, receiver
):
    from koudai_flask.jobs.queue import get_queue
    from tests.sync_support import rq_config, work

    app = make_app(
        database_url,
        KOUDAI_WEBHOOKS=True,
        KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True,
        **rq_config(redis_url),
    )
    with app.app_context():
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 5}])
        subscribe(receiver, "order.paid")
        receiver.answer(503)
        paid_order()
        assert receiver.received == []  # nothing is sent before a worker runs
        work(app)
        [delivery] = rows()
        assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 503)
        assert get_queue().scheduled_job_registry.get_job_ids() == [
            f"{app.config['KOUDAI_QUEUE_NAME']}-webhook-{delivery.id}-2"
        ]
        # Once due, the sweep sends it (here: as if Redis had lost the scheduled retry).
        with unit_of_work() as session:
            session.get(WebhookDelivery, delivery.id).next_attempt_at = utcnow()
        assert webhook_jobs.sweep() == 1
        work(app)
        [delivery] = rows()
        assert (delivery.status, delivery.attempts) == ("delivered", 2)
        assert [r.verified for r in receiver.received] == [True, True]
        get_queue().scheduled_job_registry.remove(
            f"{app.config['KOUDAI_QUEUE_NAME']}-webhook-{delivery.id}-2", delete_job=True
        )


RETURN_TO = {"name": "售后组", "phone": "0571-88886666", "address": "杭州市文三路 90 号"}


def test_a_return_reaches_the_receiver_with_its_items_and_waybill(hooked, receiver):
    from koudai_flask.services import returns

    subscribe(
        receiver,
        "order.refund_requested",
        "order.return_agreed",
        "order.return_sent",
        "order.refund_settled",
    )
    order = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 2}])
    orders.mark_paid(order.number, amount=order.total, transaction_id="T-2", provider="offline")
    orders.ship(order.number, carrier="shunfeng", tracking_number="SF910001")
    orders.request_refund(
        order.number, reason="cracked", actor="buyer", lines={"KET": 1}, returning=True
    )
    returns.agree(order.number, actor="staff:1", address=RETURN_TO)
    returns.send_back(order.number, carrier="yuantong", tracking_number="YT910002")
    orders.refund(order.number, lines={"KET": 1}, restock=True, actor="staff:1")
    events = [(r.headers["Koudai-Webhook-Event"], r.document["data"]) for r in receiver.received]
    assert [name for name, _ in events] == [
        "order.refund_requested",
        "order.return_agreed",
        "order.return_sent",
        "order.refund_settled",
    ]
    assert events[0][1]["refund_request"] == {"lines": {"KET": 1}, "returning": True}
    assert events[1][1]["return_address"] == RETURN_TO
    assert (events[2][1]["carrier"], events[2][1]["tracking_number"]) == ("yuantong", "YT910002")
    assert (events[3][1]["status"], events[3][1]["previous_status"]) == ("shipped", "refunding")
    assert "refund_request" not in events[3][1]


def test_every_parcel_delivery_and_refund_of_an_order_reaches_the_receiver(hooked, receiver):
    """What an ERP keeping the books needs: each parcel with its waybill, the delivery and
    completion, and each refund with its amount, partial ones too."""
    subscribe(
        receiver,
        "order.partially_shipped",
        "order.shipped",
        "order.delivered",
        "order.completed",
        "order.partially_refunded",
        "order.refunded",
    )
    order = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 3}])
    orders.mark_paid(order.number, amount=order.total, transaction_id="T-3", provider="offline")
    orders.ship(order.number, carrier="shunfeng", tracking_number="SF920001", lines={"KET": 1})
    orders.refund(order.number, amount=1000, reason="a dent", actor="staff:1")
    orders.ship(order.number, carrier="yuantong", tracking_number="YT920002")
    orders.deliver(order.number)
    orders.complete(order.number)
    other = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}])
    orders.mark_paid(other.number, amount=other.total, transaction_id="T-4", provider="offline")
    orders.request_refund(other.number, reason="changed their mind", actor="buyer")
    orders.refund(other.number, reason="changed their mind", actor="staff:1")
    events = [(r.headers["Koudai-Webhook-Event"], r.document["data"]) for r in receiver.received]
    assert [(name, data["number"], data["status"]) for name, data in events] == [
        ("order.partially_shipped", order.number, "paid"),
        ("order.partially_refunded", order.number, "paid"),
        ("order.shipped", order.number, "shipped"),
        ("order.delivered", order.number, "delivered"),
        ("order.completed", order.number, "completed"),
        ("order.refunded", other.number, "refunded"),
    ]
    data = [data for _, data in events]
    assert (data[0]["carrier"], data[0]["tracking_number"]) == ("shunfeng", "SF920001")
    assert (data[2]["carrier"], data[2]["tracking_number"]) == ("yuantong", "YT920002")
    assert data[2]["previous_status"] == "paid"
    refunds = get_state().session.scalars(select(Refund.id).order_by(Refund.id)).all()
    assert (data[1]["amount"], data[1]["refund_id"]) == (1000, refunds[0])
    assert (data[5]["amount"], data[5]["refund_id"]) == (other.total, refunds[1])
    assert "carrier" not in data[3] and "amount" not in data[4]
    assert all(r.verified for r in receiver.received)


def test_a_printed_packing_slip_reaches_the_receiver_with_its_count(hooked, receiver):
    from koudai_flask.services import packing

    subscribe(receiver, "order.slip_printed")
    number = paid_order()
    packing.print_slips(OWNER, [number])
    packing.print_slips(OWNER, [number])
    sent = [r.document["data"] for r in receiver.received]
    assert [(d["number"], d["status"], d["times"], d["printed_by"]) for d in sent] == [
        (number, "paid", 1, OWNER),
        (number, "paid", 2, OWNER),
    ]
    assert [r.headers["Koudai-Webhook-Event"] for r in receiver.received] == [
        "order.slip_printed"
    ] * 2


def test_a_product_change_reaches_the_receiver_once_per_call_with_what_it_left(hooked, receiver):
    """A channel listing the catalog learns of new products, each save once with the final
    titles and prices however many steps made it, archiving, and nothing of a refused
    change."""
    from koudai_flask.errors import ValidationError

    subscribe(receiver, "product.created", "product.updated", "product.archived")
    made = catalog.create_product(
        title="Teapot",
        slug="teapot",
        description="Yixing clay",
        options=["color"],
        images=["pots/teapot-1.jpg"],
        skus=[{"code": "POT-R", "price": 5000, "attributes": {"color": "red"}, "stock": 2}],
    )
    catalog.update_sku("POT-R", price=5500)
    with unit_of_work():  # one call of two steps: one event, as the steps left it
        catalog.update_product(made.id, title="Red teapot")
        catalog.add_sku(made.id, {"code": "POT-B", "price": 5200, "attributes": {"color": "blue"}})
    with pytest.raises(ValidationError), unit_of_work():
        catalog.update_sku("POT-R", price=9900)
        catalog.add_sku(made.id, {"code": "POT-R", "price": 1, "attributes": {"color": "red"}})
    catalog.archive_product(made.id)
    # In a request the links are absolute (a worker needs SERVER_NAME or
    # KOUDAI_CAMPAIGN_LINK_BASE; with neither, they are "").
    with hooked.test_request_context("/", base_url="https://shop.example.cn"):
        catalog.update_product(made.id, title="Old teapot")  # a later call: its own event
    events = [(r.headers["Koudai-Webhook-Event"], r.document["data"]) for r in receiver.received]
    assert [name for name, _ in events] == [
        "product.created",
        "product.updated",
        "product.updated",
        "product.archived",
        "product.updated",
    ]
    created, priced, saved, archived, renamed = (data for _, data in events)
    assert created == {
        "product_id": made.id,
        "slug": "teapot",
        "title": "Teapot",
        "description": "Yixing clay",
        "status": "active",
        "category": None,
        "url": "",
        "images": [{"path": "pots/teapot-1.jpg", "url": ""}],
        "skus": [
            {
                "sku": "POT-R",
                "price": 5000,
                "active": True,
                "attributes": {"color": "red"},
                "barcode": None,
                "weight_grams": 0,
            }
        ],
    }
    assert [s["price"] for s in priced["skus"]] == [5500]
    assert saved["title"] == "Red teapot"
    assert [(s["sku"], s["price"]) for s in saved["skus"]] == [("POT-R", 5500), ("POT-B", 5200)]
    assert archived["status"] == "archived" and renamed["title"] == "Old teapot"
    assert renamed["url"] == "https://shop.example.cn/shop/products/teapot"
    assert renamed["images"] == [
        {"path": "pots/teapot-1.jpg", "url": "https://shop.example.cn/shop/media/pots/teapot-1.jpg"}
    ]
    # Outside a request, the shop's address from KOUDAI_CAMPAIGN_LINK_BASE.
    hooked.config["KOUDAI_CAMPAIGN_LINK_BASE"] = "https://m.shop.example.cn/shop/"
    catalog.update_product(made.id, title="Teapot")
    relinked = receiver.received[-1].document["data"]
    assert relinked["url"] == "https://m.shop.example.cn/shop/products/teapot"
    assert relinked["images"][0]["url"] == "https://m.shop.example.cn/shop/media/pots/teapot-1.jpg"
    assert all(r.verified for r in receiver.received)


def test_shipping_templates_reach_a_receiver_when_made_changed_and_deleted(hooked, receiver):
    """A channel or ERP charging the shop's freight follows its templates; a save that
    changes nothing and a refused delete send nothing."""
    from koudai_flask.errors import ValidationError
    from koudai_flask.services import shipping_templates

    subscribe(
        receiver,
        "shipping_template.created",
        "shipping_template.updated",
        "shipping_template.deleted",
    )
    figures = {"basis": "piece", "first": 1, "first_fee": 800, "additional": 1}
    made = shipping_templates.save_template(
        OWNER, None, {**figures, "name": "快递", "additional_fee": 200}
    )
    shipping_templates.save_template(
        OWNER, made.id, {**figures, "name": "快递", "additional_fee": 300}
    )
    shipping_templates.save_template(  # the same figures again: nothing to tell
        OWNER, made.id, {**figures, "name": "快递", "additional_fee": 300}
    )
    product = catalog.create_product(title="Pot", skus=[{"code": "POT", "price": 100}])
    shipping_templates.assign(OWNER, [product.id], made.id)
    with pytest.raises(ValidationError):
        shipping_templates.delete_template(OWNER, made.id)  # in use: refused
    shipping_templates.assign(OWNER, [product.id], None)
    shipping_templates.delete_template(OWNER, made.id)
    sent = [(r.headers["Koudai-Webhook-Event"], r.document["data"]) for r in receiver.received]
    assert [name for name, _ in sent] == [
        "shipping_template.created",
        "shipping_template.updated",
        "shipping_template.deleted",
    ]
    created, updated, deleted = (data for _, data in sent)
    assert created["id"] == made.id and created["name"] == "快递"
    assert (created["additional_fee"], updated["additional_fee"]) == (200, 300)
    assert created["areas"] == [] and created["excluded"] == []
    assert deleted == {"id": made.id, "name": "快递"}
    assert all(r.verified for r in receiver.received)
