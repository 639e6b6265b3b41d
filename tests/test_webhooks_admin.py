"""The back-office webhook pages: create (secret shown once), edit, disable and enable, ping,
the delivery log with the receiver's answers, send again, CSRF and the staff.manage check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, WebhookDelivery, WebhookSubscription
from koudai_flask.services import catalog, inventory, staff, webhooks
from tests.test_webhooks import SECRET, Receiver

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PASSWORD = "correct-horse-battery"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.stop()


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    app = make_app(database_url, KOUDAI_WEBHOOKS=True, KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True)
    with app.app_context():
        for role in ("owner", "admin", "customer_service", "viewer"):
            staff.grant(f"staff:{role}@shop.cn", role, email=f"{role}@shop.cn", password=PASSWORD)
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 50}])
    return app


def login(app: Flask, who: str) -> Any:
    client = app.test_client()
    token = TOKEN.search(client.get("/shop-admin/login").get_data(as_text=True)).group(1)
    response = client.post(
        "/shop-admin/login",
        data={"email": f"{who}@shop.cn", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302, who
    client.csrf = token  # type: ignore[attr-defined]
    return client


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(get_state().session.scalar(select(func.count()).select_from(model)))


def create(client: Any, url: str, events: list[str]) -> Any:
    return client.post(
        "/shop-admin/webhooks",
        data={"csrf_token": client.csrf, "url": url, "events": events, "description": "ERP"},
    )


def test_the_owner_creates_a_webhook_and_sees_its_secret_once(shop, receiver):
    client = login(shop, "owner")
    page = client.get("/shop-admin/")
    assert 'href="/shop-admin/webhooks"' in page.get_data(as_text=True)
    response = create(client, receiver.url, ["order.paid", "stock.changed"])
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    secret = re.search(r'<pre class="kd-pre" id="secret">([^<]+)</pre>', html).group(1)
    with shop.app_context():
        [sub] = webhooks.list_subscriptions()
        assert (sub.url, sub.events, sub.description, sub.owner_user_id) == (
            receiver.url,
            ["order.paid", "stock.changed"],
            "ERP",
            "staff:owner@shop.cn",
        )
        assert webhooks.unseal(sub.secret_sealed) == secret
    listing = client.get("/shop-admin/webhooks").get_data(as_text=True)
    assert receiver.url in listing
    assert secret not in listing
    assert f"{sub.secret_hint}</small>" in listing


def test_a_refused_url_comes_back_with_the_reason_and_nothing_is_made(make_app, database_url):
    app = make_app(database_url, KOUDAI_WEBHOOKS=True)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
    client = login(app, "owner")
    response = create(client, "http://127.0.0.1:9/hook", ["order.paid"])
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "127.0.0.1 解析到 127.0.0.1，不是公网地址" in html
    assert 'value="http://127.0.0.1:9/hook"' in html  # what was typed is kept
    response = create(client, "https://93.184.216.34/hook", [])
    assert response.status_code == 422
    assert "请至少选择一个事件。" in response.get_data(as_text=True)
    assert count(app, WebhookSubscription) == 0


def test_the_page_says_when_webhooks_are_off(make_app, database_url):
    app = make_app(database_url)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
    html = login(app, "owner").get("/shop-admin/webhooks").get_data(as_text=True)
    assert 'id="webhooks-off"' in html


def test_posts_without_a_csrf_token_change_nothing(shop, receiver):
    client = login(shop, "owner")
    assert create(client, receiver.url, ["order.paid"]).status_code == 201
    with shop.app_context():
        [sub] = webhooks.list_subscriptions()
    audit = count(shop, AuditEntry)
    for path, data in [
        ("/shop-admin/webhooks", {"url": receiver.url, "events": ["order.paid"]}),
        (f"/shop-admin/webhooks/{sub.id}/edit", {"url": receiver.url, "events": ["order.paid"]}),
        (f"/shop-admin/webhooks/{sub.id}/active", {"active": "0"}),
        (f"/shop-admin/webhooks/{sub.id}/secret", {}),
        (f"/shop-admin/webhooks/{sub.id}/ping", {}),
        (f"/shop-admin/webhooks/{sub.id}/delete", {}),
    ]:
        assert client.post(path, data=data).status_code == 400, path
    assert (count(shop, WebhookSubscription), count(shop, AuditEntry)) == (1, audit)
    assert receiver.received == []


@pytest.mark.parametrize("role", ["customer_service", "viewer"])
def test_staff_without_staff_manage_get_403_everywhere(shop, receiver, role):
    with shop.app_context():
        sub = webhooks.create_subscription(
            receiver.url, ["order.paid"], owner_user_id="staff:owner@shop.cn"
        ).subscription
        delivery = webhooks.ping(sub.id, actor="staff:owner@shop.cn")
    client = login(shop, role)
    assert 'href="/shop-admin/webhooks"' not in client.get("/shop-admin/").get_data(as_text=True)
    assert client.get("/shop-admin/webhooks").status_code == 403
    assert client.get(f"/shop-admin/webhooks/deliveries?subscription={sub.id}").status_code == 403
    for path in [
        "/shop-admin/webhooks",
        f"/shop-admin/webhooks/{sub.id}/active",
        f"/shop-admin/webhooks/{sub.id}/ping",
        f"/shop-admin/webhooks/{sub.id}/delete",
        f"/shop-admin/webhooks/deliveries/{delivery.id}/redeliver",
    ]:
        assert client.post(path, data={"csrf_token": client.csrf}).status_code == 403, path
    assert len(receiver.received) == 1  # the owner's ping only


def test_an_admin_edits_disables_pings_and_reads_the_log(shop, receiver):
    with shop.app_context():
        sub = webhooks.create_subscription(
            receiver.url, ["order.paid"], owner_user_id="staff:owner@shop.cn", secret=SECRET
        ).subscription
    client = login(shop, "admin")
    response = client.post(
        f"/shop-admin/webhooks/{sub.id}/edit",
        data={"csrf_token": client.csrf, "url": receiver.url, "events": ["stock.changed"]},
    )
    assert response.status_code == 303
    receiver.answer(500)
    with shop.app_context():
        assert webhooks.get_subscription(sub.id).events == ["stock.changed"]
        inventory.adjust("KET", 2, reason="delivery")
    listing = client.get("/shop-admin/webhooks")
    assert listing.status_code == 200  # with a failure count on the row
    assert 'data-active="yes"' in listing.get_data(as_text=True)
    log = client.get(f"/shop-admin/webhooks/deliveries?subscription={sub.id}")
    html = log.get_data(as_text=True)
    assert log.status_code == 200
    assert 'data-status="pending"' in html
    assert "HTTP 500" in html and "answer 500" in html
    with shop.app_context():
        [delivery] = webhooks.deliveries(sub.id)
    response = client.post(
        f"/shop-admin/webhooks/deliveries/{delivery.id}/redeliver",
        data={"csrf_token": client.csrf},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/webhooks/deliveries?subscription={sub.id}")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-status="delivered"' in html
    failed_only = client.get(f"/shop-admin/webhooks/deliveries?subscription={sub.id}&status=failed")
    assert 'data-delivery="' not in failed_only.get_data(as_text=True)
    assert client.get("/shop-admin/webhooks/deliveries?status=bogus").status_code == 404
    assert client.get("/shop-admin/webhooks/deliveries?subscription=999").status_code == 404
    # Disable, enable, ping.
    assert (
        client.post(
            f"/shop-admin/webhooks/{sub.id}/active", data={"csrf_token": client.csrf, "active": "0"}
        ).status_code
        == 303
    )
    listing = client.get("/shop-admin/webhooks").get_data(as_text=True)
    assert 'data-active="no"' in listing
    refused = client.post(f"/shop-admin/webhooks/{sub.id}/ping", data={"csrf_token": client.csrf})
    assert refused.status_code == 422
    client.post(
        f"/shop-admin/webhooks/{sub.id}/active", data={"csrf_token": client.csrf, "active": "1"}
    )
    response = client.post(f"/shop-admin/webhooks/{sub.id}/ping", data={"csrf_token": client.csrf})
    assert response.status_code == 303
    assert [r.headers["Koudai-Webhook-Event"] for r in receiver.received] == [
        "stock.changed",
        "stock.changed",
        "ping",
    ]
    assert all(r.verified for r in receiver.received)
    assert (
        client.post("/shop-admin/webhooks/x/ping", data={"csrf_token": client.csrf}).status_code
        == 404
    )


def test_rotating_the_secret_shows_the_new_one_once_and_delete_removes_the_log(shop, receiver):
    with shop.app_context():
        sub = webhooks.create_subscription(
            receiver.url, ["order.paid"], owner_user_id="staff:owner@shop.cn", secret=SECRET
        ).subscription
        webhooks.ping(sub.id, actor="staff:owner@shop.cn")
    client = login(shop, "owner")
    response = client.post(
        f"/shop-admin/webhooks/{sub.id}/secret", data={"csrf_token": client.csrf}
    )
    assert response.status_code == 200
    secret = re.search(r'id="secret">([^<]+)<', response.get_data(as_text=True)).group(1)
    assert secret != SECRET and secret.startswith("whsec_")
    with shop.app_context():
        assert webhooks.unseal(webhooks.get_subscription(sub.id).secret_sealed) == secret
    response = client.post(
        f"/shop-admin/webhooks/{sub.id}/delete", data={"csrf_token": client.csrf}
    )
    assert response.status_code == 303
    assert (count(shop, WebhookSubscription), count(shop, WebhookDelivery)) == (0, 0)
    with shop.app_context():
        actions = get_state().session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.object_type == "webhook")
            .order_by(AuditEntry.id)
        )
        assert list(actions) == [
            "webhook.create",
            "webhook.ping",
            "webhook.rotate_secret",
            "webhook.delete",
        ]
