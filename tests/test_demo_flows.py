"""The demo's two walk-throughs, driven as a person would, against sandboxes on 127.0.0.1.

A: the owner makes a segment of the seeded tag and sends it a WeChat campaign; the buyer
finds the message on the WeChat sandbox's page, clicks its link, checks out with the seeded
coupon, pays at the WeChat Pay sandbox, and the funnel dashboard shows every step once.
B: the README's API walk-through: a key from the CLI, products, an order for the linked
Taobao shop, its payment, and a signed ``order.paid`` webhook at a local receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import select

from examples.host_site.app import create_app
from examples.host_site.demo_crm import (
    BUYER_OPENIDS,
    DEMO_COUPON,
    DEMO_COUPON_OFF,
    DEMO_TAG,
    DEMO_TEMPLATE_ID,
    demo_openids,
)
from examples.host_site.extensions import db
from examples.host_site.models import User
from koudai_flask.connectors.sandbox.cli import _mirror_shop
from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.sandbox.wechat import WechatSandbox
from koudai_flask.connectors.sandbox.wechatpay import SandboxKeys, WechatPaySandbox
from koudai_flask.extension import get_state
from koudai_flask.models import Order, Product
from koudai_flask.services import funnel, inventory
from tests.test_host_site import (
    ACCOUNTS,
    CSRF_INPUT,
    _postgres_schema,
    run_command,
)

STEPS = (
    "push_sent",
    "push_clicked",
    "visit",
    "product_viewed",
    "cart_added",
    "checkout_started",
    "order_placed",
    "order_paid",
)
SETUP = (
    ["init-db"],
    ["koudai", "db", "upgrade"],
    ["koudai", "demo", "seed", "--products", "8"],
    ["seed-users"],
    ["seed-crm"],
)
MOBILE = {"User-Agent": "Mozilla/5.0 (iPhone) Mobile"}


@pytest.fixture(params=["sqlite", "postgresql"])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The demo site set up as ``make demo`` does, served on 127.0.0.1, with its sandboxes."""
    drop_schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'demo.db'}"
    else:
        url, drop_schema = _postgres_schema()
    wechat = WechatSandbox(template_ids={DEMO_TEMPLATE_ID}, known_openids=demo_openids())
    pay = WechatPaySandbox(SandboxKeys.generate(), notify_interval=0.05)
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "demo-flows-test",
            "KOUDAI_MEDIA_FOLDER": str(tmp_path / "media"),
            "KOUDAI_WECHAT": wechat.settings_for_client(),
            "KOUDAI_WECHATPAY": pay.settings_for_client(),
            # As the demo sets them (examples/host_site/app.py).
            "KOUDAI_WEBHOOKS": True,
            "KOUDAI_WEBHOOKS_ALLOW_PRIVATE": True,
        }
    )
    server = LoopbackServer(app)
    # Links and payment callbacks name the address the site really answers on.
    app.config["SERVER_NAME"] = server.url.removeprefix("http://")
    try:
        for args in SETUP:
            run_command(app, args)
        yield {"app": app, "wechat": wechat, "pay": pay, "server": server}
    finally:
        server.stop()
        wechat.stop()
        pay.stop()
        with app.app_context():
            db.engine.dispose()
        if drop_schema is not None:
            drop_schema()


def csrf_of(client: FlaskClient, path: str) -> str:
    page = client.get(path, headers=MOBILE)
    assert page.status_code == 200, path
    match = CSRF_INPUT.search(page.get_data(as_text=True))
    assert match is not None, path
    return match.group(1)


def signed_in(app: Flask, role: str) -> FlaskClient:
    account = ACCOUNTS[role]
    client = app.test_client()
    token = csrf_of(client, "/login")
    response = client.post(
        "/login",
        data={"csrf_token": token, "email": account.email, "password": account.password},
    )
    assert response.status_code == 302
    return client


def a_product(app: Flask) -> tuple[str, str, int]:
    """A demo product's slug, one SKU in stock costing at least the coupon's minimum."""
    with app.app_context():
        for product in get_state().session.scalars(select(Product).order_by(Product.id)):
            for sku in product.skus:
                if sku.price >= 5000 and inventory.available(sku.code) > 0:
                    return product.slug, sku.code, sku.price
    raise AssertionError("no demo SKU in stock")


def test_flow_a_segment_campaign_click_coupon_pay_funnel(demo: dict[str, Any]) -> None:
    app, wechat, pay = demo["app"], demo["wechat"], demo["pay"]
    slug, sku, price = a_product(app)

    owner = signed_in(app, "owner")
    token = csrf_of(owner, "/shop-admin/customers/segments/new")
    saved = owner.post(
        "/shop-admin/customers/segments",
        data={"csrf_token": token, "name": "Regulars", "tag": DEMO_TAG},
    )
    assert saved.status_code == 303
    segment_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    token = csrf_of(owner, "/shop-admin/campaigns/new")
    made = owner.post(
        "/shop-admin/campaigns/new",
        data={
            "csrf_token": token,
            "name": "春季上新",
            "channel": "wechat",
            "segment_id": str(segment_id),
            "wechat_template_id": DEMO_TEMPLATE_ID,
            "body": "thing1: {{ shop_name }} 春季上新\nthing2: {{ name }}，点击查看",
            "target": f"/products/{slug}",
            "rate_per_minute": "600",
        },
    )
    assert made.status_code == 303, made.get_data(as_text=True)
    campaign_path = made.headers["Location"].split("127.0.0.1", 1)[-1]
    campaign_path = re.sub(r"^:\d+", "", campaign_path)
    campaign_id = int(campaign_path.rsplit("/", 1)[1])
    token = csrf_of(owner, campaign_path)
    sent = owner.post(f"{campaign_path}/send", data={"csrf_token": token})
    assert sent.status_code in (302, 303)

    # The WeChat sandbox's page shows the three messages, each with its tracked link.
    page = requests.get(f"{wechat.url}/messages", timeout=5).text
    assert len(wechat.api.messages) == 3
    assert {m.touser for m in wechat.api.messages} == demo_openids()
    mine = next(
        m for m in wechat.api.messages if m.touser == BUYER_OPENIDS[ACCOUNTS["buyer"].email]
    )
    assert mine.template_id == DEMO_TEMPLATE_ID
    assert f'<a href="{mine.url}">' in page
    assert mine.url.startswith(f"{demo['server'].url}/shop/r/")

    buyer = signed_in(app, "buyer")
    landing = buyer.get(mine.url.removeprefix(demo["server"].url), headers=MOBILE)
    assert landing.status_code == 302
    assert landing.headers["Location"].endswith(f"/shop/products/{slug}")
    assert buyer.get(f"/shop/products/{slug}", headers=MOBILE).status_code == 200
    token = csrf_of(buyer, f"/shop/products/{slug}")
    added = buyer.post("/shop/cart/add", data={"csrf_token": token, "sku": sku, "quantity": 1})
    assert added.status_code == 302
    checkout = buyer.get(f"/shop/checkout?coupon={DEMO_COUPON}", headers=MOBILE)
    text = checkout.get_data(as_text=True)
    form = {
        "csrf_token": CSRF_INPUT.search(text).group(1),  # type: ignore[union-attr]
        "token": re.search(r'name="token"[^>]*value="([^"]+)"', text).group(1),  # type: ignore[union-attr]
        "coupon": DEMO_COUPON,
        "name": "李同学",
        "phone": "13800138000",
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "street": "文三路 100 号",
        "note": "",
    }
    placed = buyer.post("/shop/checkout", data=form, headers=MOBILE)
    assert placed.status_code == 302, placed.get_data(as_text=True)
    number = placed.headers["Location"].split("/orders/")[1].split("/")[0]
    with app.app_context():
        order = get_state().session.scalar(select(Order).where(Order.number == number))
        assert order is not None
        assert (order.discount, order.total) == (
            DEMO_COUPON_OFF,
            price - DEMO_COUPON_OFF + order.shipping_fee,
        )
        total = order.total

    token = csrf_of(buyer, f"/shop/orders/{number}/pay")
    start = buyer.post(
        f"/shop/orders/{number}/pay",
        data={"csrf_token": token, "provider": "wechatpay"},
        headers=MOBILE,
    )
    assert start.status_code == 302
    assert start.headers["Location"].startswith(f"{pay.url}/pay?")
    with requests.Session() as browser:
        cashier = browser.get(start.headers["Location"], timeout=5).text
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', cashier))
        action = re.search(r'<form method="post" action="([^"]+)"', cashier)
        assert action is not None
        paid = browser.post(
            urljoin(pay.url, action.group(1)), data=fields, allow_redirects=False, timeout=5
        )
    assert paid.status_code == 302
    pay.gateway.notifier.wait()
    assert pay.gateway.notifier.deliveries == [(number, 204)]

    with app.app_context():
        funnel.flush()
    page = owner.get(f"/shop-admin/funnel?campaign={campaign_id}").get_data(as_text=True)
    for step in STEPS:
        expected = 3 if step == "push_sent" else 1
        assert re.search(
            rf'<tr data-step="{step}"><td>[^<]+</td><td class="kd-visitors">{expected}</td>', page
        ), step
    with app.app_context():
        session = get_state().session
        session.expire_all()
        order = session.scalar(select(Order).where(Order.number == number))
        assert order is not None and order.status == "paid" and order.total == total


class Receiver:
    """A webhook receiver as the README writes it: checks the signature, keeps the events."""

    def __init__(self) -> None:
        self.secret = b""
        self.events: list[dict[str, Any]] = []
        self.refused = 0
        self.got = threading.Event()
        app = Flask("receiver")

        @app.post("/koudai-hook")
        def hook() -> tuple[str, int]:
            stamp = request.headers.get("Koudai-Webhook-Timestamp", "")
            signed = stamp.encode() + b"." + request.get_data()
            expected = "v1=" + hmac.new(self.secret, signed, hashlib.sha256).hexdigest()
            given = request.headers.get("Koudai-Webhook-Signature", "")
            if not stamp.isdigit() or not hmac.compare_digest(expected, given):
                self.refused += 1
                return "", 401
            self.events.append(json.loads(request.get_data()))
            self.got.set()
            return "", 204

        self.server = LoopbackServer(app)


def test_flow_b_api_key_products_taobao_order_paid_webhook(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    app, base = demo["app"], demo["server"].url
    taobao = TaobaoSandbox()
    receiver = Receiver()
    try:
        with app.app_context():
            _mirror_shop(taobao)
            owner_id = db.session.scalar(
                select(User.id).where(User.email == ACCOUNTS["owner"].email)
            )
        grant = taobao.issue_session()
        settings = tmp_path / "koudai_taobao.json"
        settings.write_text(json.dumps(taobao.settings_for_client(grant.access_token)))
        run_command(app, ["link-taobao", str(settings)])
        key = run_command(
            app,
            ["koudai", "api-key", "create", "--owner", str(owner_id)]
            + [
                arg
                for scope in ("orders.view", "channels.manage", "orders.mark_paid", "stock.adjust")
                for arg in ("--scope", scope)
            ],
        ).splitlines()[0]  # the key on stdout; the note after it goes to stderr
        hook_url = f"{receiver.server.url}/koudai-hook"
        receiver.secret = run_command(app, ["subscribe-webhook", hook_url]).strip().encode()

        api = f"{base}/shop-api/v1"
        auth = {"Authorization": f"Bearer {key}"}
        products = requests.get(f"{api}/products?limit=2", headers=auth, timeout=10)
        assert products.status_code == 200
        assert len(products.json()["items"]) == 2
        skus = requests.get(f"{api}/skus?limit=50", headers=auth, timeout=10).json()["items"]
        sku = next(s["code"] for s in skus if s["code"].startswith("DEMO-"))
        order = requests.post(
            f"{api}/orders",
            headers={**auth, "Idempotency-Key": "tb-order-1001"},
            json={
                "channel": "taobao-demo",
                "external_id": "1001",
                "lines": [{"sku": sku, "quantity": 1}],
                "address": {"name": "李同学", "phone": "13800138000", "street": "1 Nanjing Rd"},
            },
            timeout=10,
        )
        assert order.status_code == 201, order.text
        number, total = order.json()["number"], order.json()["total"]
        paid = requests.post(
            f"{api}/orders/{number}/payments",
            headers=auth,
            json={"amount": total, "transaction_id": "tb-pay-1001"},
            timeout=10,
        )
        assert paid.status_code in (200, 201), paid.text
        deadline = time.monotonic() + 20
        while not receiver.got.is_set() and time.monotonic() < deadline:
            receiver.got.wait(0.2)
        assert receiver.refused == 0
        assert [(e["type"], e["data"]["number"], e["data"]["total"]) for e in receiver.events] == [
            ("order.paid", number, total)
        ]
        assert receiver.events[0]["data"]["channel"] == "taobao-demo"
    finally:
        receiver.server.stop()
        taobao.stop()
