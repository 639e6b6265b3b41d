"""Back-in-stock alerts (到货提醒): asked for on a sold-out SKU's product page, told once by
SMS, e-mail or WeChat when the stock is back, refused with nothing written, on SQLite and
PostgreSQL, with real loopback servers for e-mail and WeChat."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.jobs import schedules
from koudai_flask.models import CustomerIdentity, StockAlert
from koudai_flask.models.base import utcnow
from koudai_flask.notifications import sms
from koudai_flask.services import catalog, customers, inventory, stock_alerts
from koudai_flask.services.transaction import unit_of_work
from tests.shop_client import ShopClient
from tests.test_admin import PASSWORD
from tests.test_notifications import FlakyProvider, mail_settings, smtp, wechat  # noqa: F401

PHONE = "13800138000"
SHOP = {"SERVER_NAME": "shop.example.com"}


def tea_shop() -> str:
    """A tea in two sizes, the large one sold out; returns the product's slug."""
    product = catalog.create_product(
        title="龙井茶",
        options=["size"],
        skus=[
            {"code": "LJ-S", "price": 8800, "attributes": {"size": "小罐"}, "stock": 3},
            {"code": "LJ-L", "price": 16800, "attributes": {"size": "大罐"}, "stock": 0},
        ],
    )
    return product.slug


def sign_up(app: Flask, **contact: str) -> tuple[ShopClient, int]:
    with app.app_context():
        customer_id = customers.register(password="buyer-pass-1", name="李雷", **contact).id
    client = ShopClient(app)
    client.get("/account/login")
    login = contact.get("email") or contact["phone"]
    client.post("/account/login", {"login": login, "password": "buyer-pass-1"})
    return client, customer_id


def alerts(app: Flask) -> list[tuple[str, str, int]]:
    """(SKU id, status, attempts) of every alert, oldest first."""
    with app.app_context():
        session = get_state().session
        session.expire_all()
        rows = session.scalars(select(StockAlert).order_by(StockAlert.id)).all()
        return [(row.status, row.channel or "", row.attempts) for row in rows]


@pytest.fixture
def texting(make_app: Any, database_url: str) -> tuple[Flask, str]:
    app = make_app(database_url, KOUDAI_SMS={"provider": "log"}, **SHOP)
    with app.app_context():
        return app, tea_shop()


def test_a_buyer_asks_on_a_sold_out_size_and_is_texted_once_when_it_is_back(texting):
    app, slug = texting
    client, customer_id = sign_up(app, phone=PHONE)
    page = client.text(f"/products/{slug}")
    assert 'id="stock-alerts"' in page
    assert 'value="LJ-L"' in page.split('id="stock-alerts"')[1]
    assert 'value="LJ-S"' not in page.split('id="stock-alerts"')[1]  # in stock: bought now
    asked = client.post("/alerts", {"sku": "LJ-L"})
    assert asked.status_code == 303 and asked.headers["Location"].endswith(f"/products/{slug}")
    assert "到货后我们会通知您。" in client.text(f"/products/{slug}")
    assert client.post("/alerts", {"sku": "LJ-L"}).status_code == 303  # again: still one
    assert alerts(app) == [("waiting", "", 0)]
    with app.app_context():
        assert stock_alerts.sweep() == 0  # not back yet
        assert sms.get_provider().sent == []
        inventory.adjust("LJ-L", 5, reason="delivery")
        assert stock_alerts.waiting_for("LJ-L") == 1
        assert stock_alerts.sweep() == 1  # inline: sent now
        [sent] = sms.get_provider().sent
        assert sent.phone == PHONE
        assert sent.text == (
            "【Koudai Shop】您关注的龙井茶（大罐）到货了，数量有限，欢迎选购。"
            f"http://shop.example.com/shop/products/{slug}"
        )
        assert stock_alerts.sweep() == 0
        alert_id = get_state().session.scalar(select(StockAlert.id))
        assert stock_alerts.send(alert_id) == "sent"  # a job run twice: told once
        assert len(sms.get_provider().sent) == 1
    assert alerts(app) == [("sent", "sms", 1)]
    listed = client.text("/account/alerts")
    assert "龙井茶" in listed and 'data-status="sent"' in listed
    # Sold out again, asked again: the same row waits again and is told again.
    with app.app_context():
        inventory.adjust("LJ-L", -5, reason="sold at the fair")
    assert client.post("/alerts", {"sku": "LJ-L"}).status_code == 303
    assert alerts(app) == [("waiting", "", 0)]
    with app.app_context():
        inventory.adjust("LJ-L", 2, reason="delivery")
        assert stock_alerts.sweep() == 1
        assert len(sms.get_provider().sent) == 2


def test_the_product_page_tells_a_buyer_what_they_already_wait_for(texting):
    app, slug = texting
    client, customer_id = sign_up(app, phone=PHONE)
    other, _ = sign_up(app, phone="13900139000")
    assert client.post("/alerts", {"sku": "LJ-L"}).status_code == 303
    section = client.text(f"/products/{slug}").split('id="stock-alerts"')[1]
    assert 'value="LJ-L"' not in section  # no second button
    assert "大罐 · 到货会通知您" in section and "/shop/account/alerts" in section
    # Another buyer, and a guest, are offered the button.
    assert 'value="LJ-L"' in other.text(f"/products/{slug}").split('id="stock-alerts"')[1]
    guest = ShopClient(app).text(f"/products/{slug}").split('id="stock-alerts"')[1]
    assert 'value="LJ-L"' in guest and "到货会通知您" not in guest
    # Taken back: offered again.
    with app.app_context():
        alert_id = get_state().session.scalar(select(StockAlert.id))
        stock_alerts.cancel(customer_id, alert_id)
    assert 'value="LJ-L"' in client.text(f"/products/{slug}").split('id="stock-alerts"')[1]


def refused_with(app: Flask, customer_id: int, sku: str, reason: str | None) -> None:
    before = alerts(app)
    with app.app_context(), pytest.raises((ValidationError, NotFound)) as refused:
        stock_alerts.subscribe(customer_id, sku)
    assert getattr(refused.value, "reason", None) == reason
    assert alerts(app) == before


def test_what_cannot_be_asked_for_is_refused_and_writes_nothing(texting, monkeypatch):
    app, _ = texting
    _, texted = sign_up(app, phone=PHONE)
    _, unreachable = sign_up(app, email="li@buyers.cn")  # the shop sends no e-mail
    refused_with(app, texted, "LJ-S", "alert_in_stock")
    refused_with(app, texted, "NOPE", "unknown_sku")
    refused_with(app, unreachable, "LJ-L", "alert_unreachable")
    with app.app_context():
        for code in ("BI-1", "BI-2"):
            catalog.create_product(title=code, skus=[{"code": code, "price": 100, "stock": 0}])
        archived = catalog.create_product(
            title="旧茶", skus=[{"code": "OLD", "price": 100, "stock": 0}]
        )
        catalog.archive_product(archived.id)
    refused_with(app, texted, "OLD", "not_on_sale")
    monkeypatch.setattr(stock_alerts, "MAX_WAITING", 2)
    with app.app_context():
        stock_alerts.subscribe(texted, "BI-1")
        stock_alerts.subscribe(texted, "BI-2")
    refused_with(app, texted, "LJ-L", "alert_limit")


def test_the_pages_ask_for_a_login_a_token_and_keep_to_the_buyers_own(texting):
    app, slug = texting
    anonymous = ShopClient(app)
    sent = anonymous.post("/alerts", {"sku": "LJ-L"})
    assert sent.status_code == 302
    assert "/account/login?next=" in sent.headers["Location"] and slug in sent.headers["Location"]
    assert anonymous.post("/alerts", {"sku": "NOPE"}).status_code == 404
    li, _ = sign_up(app, phone=PHONE)
    han, _ = sign_up(app, phone="13900139000")
    assert li.post("/alerts", {"sku": "LJ-L"}, token=False).status_code == 400
    assert alerts(app) == []
    li.post("/alerts", {"sku": "LJ-L"})
    with app.app_context():
        alert_id = get_state().session.scalar(select(StockAlert.id))
    assert han.post(f"/account/alerts/{alert_id}/delete").status_code == 404
    listed = li.get("/account/alerts")
    assert listed.headers["Cache-Control"] == "private, no-store"
    assert 'data-status="waiting"' in listed.get_data(as_text=True)
    assert li.post(f"/account/alerts/{alert_id}/delete", token=False).status_code == 400
    assert li.post(f"/account/alerts/{alert_id}/delete").status_code == 303
    assert alerts(app) == []
    assert "暂无到货提醒" in li.text("/account/alerts")


def test_a_shop_that_can_reach_nobody_offers_no_alerts(make_app, database_url):
    app = make_app(database_url)
    with app.app_context():
        slug = tea_shop()
    assert 'id="stock-alerts"' not in ShopClient(app).text(f"/products/{slug}")
    assert "koudai-stock-alerts" not in [name for name, _, _ in schedules.periodic_jobs(app)]
    texting = make_app(
        database_url, KOUDAI_SMS={"provider": "log"}, KOUDAI_STOCK_ALERT_INTERVAL=120
    )
    assert ("koudai-stock-alerts", 120) in [
        (name, every) for name, _, every in schedules.periodic_jobs(texting)
    ]


def test_a_buyer_known_by_e_mail_is_mailed(make_app, database_url, smtp):  # noqa: F811
    app = make_app(database_url, KOUDAI_MAIL=mail_settings(smtp), **SHOP)
    with app.app_context():
        slug = tea_shop()
    _, customer_id = sign_up(app, email="li@buyers.cn")
    with app.app_context():
        stock_alerts.subscribe(customer_id, "LJ-L")
        inventory.set_on_hand("LJ-L", 4, source="stocktake")
        assert stock_alerts.sweep() == 1
    [mail] = smtp.state.received
    assert mail.rcpt_tos == ["li@buyers.cn"]
    assert mail.message["Subject"] == "Koudai Shop：龙井茶到货了"
    body = mail.message.get_body(("plain",)).get_content()
    assert "您关注的龙井茶（大罐）到货了" in body
    assert f"http://shop.example.com/shop/products/{slug}" in body
    assert alerts(app) == [("sent", "email", 1)]


def test_a_follower_gets_the_shops_wechat_template(make_app, database_url, wechat):  # noqa: F811
    app = make_app(
        database_url,
        KOUDAI_WECHAT=wechat.settings_for_client(),
        KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE="TPL_STOCK_01",
        **SHOP,
    )
    with app.app_context():
        slug = tea_shop()
    _, customer_id = sign_up(app, phone=PHONE)
    with app.app_context():
        with unit_of_work() as session:
            session.add(
                CustomerIdentity(customer_id=customer_id, kind="wechat_openid", value="oLi_01")
            )
        stock_alerts.subscribe(customer_id, "LJ-L")
        inventory.adjust("LJ-L", 1, reason="delivery")
        assert stock_alerts.sweep() == 1
    [message] = wechat.api.messages
    assert (message.touser, message.template_id) == ("oLi_01", "TPL_STOCK_01")
    assert message.data == {
        "keyword1": {"value": "龙井茶"},
        "keyword2": {"value": "大罐"},
        "keyword3": {"value": "已到货"},
    }
    assert message.url == f"http://shop.example.com/shop/products/{slug}"
    assert alerts(app) == [("sent", "wechat", 1)]


def test_a_gateway_that_fails_is_tried_again_and_then_left_failed(make_app, database_url):
    provider = f"{FlakyProvider.__module__}:FlakyProvider"
    app = make_app(
        database_url,
        KOUDAI_SMS={"provider": provider, "fail_first": 1, "signature": "gw"},
        **SHOP,
    )
    with app.app_context():
        tea_shop()
    _, customer_id = sign_up(app, phone=PHONE)
    with app.app_context():
        stock_alerts.subscribe(customer_id, "LJ-L")
        inventory.adjust("LJ-L", 1, reason="delivery")
        assert stock_alerts.sweep() == 1  # inline: the failed try is retried at once
        assert [phone for phone, _ in sms.get_provider().sent] == [PHONE]
    assert alerts(app) == [("sent", "sms", 2)]
    with app.app_context():
        sms.get_provider().fail_first = 99  # the gateway is down from now on
        inventory.adjust("LJ-L", -1, reason="sold")
        stock_alerts.subscribe(customer_id, "LJ-L")
        inventory.adjust("LJ-L", 1, reason="delivery")
        stock_alerts.sweep()  # inline: tried until its attempts ran out
        assert stock_alerts.sweep() == 0  # failed for good: no longer waiting
        session = get_state().session
        row = session.scalar(select(StockAlert))
        assert (row.status, row.attempts) == ("failed", stock_alerts.MAX_ATTEMPTS)
        assert PHONE not in row.last_error and "138****8000" in row.last_error


def test_two_workers_sending_one_alert_text_once(make_app, postgres_url):
    app = make_app(postgres_url, KOUDAI_SMS={"provider": "log"}, **SHOP)
    with app.app_context():
        tea_shop()
    _, customer_id = sign_up(app, phone=PHONE)
    with app.app_context():
        alert_id = stock_alerts.subscribe(customer_id, "LJ-L").id
        inventory.adjust("LJ-L", 1, reason="delivery")
    results: list[str] = []
    start = threading.Barrier(4)

    def worker() -> None:
        with app.app_context():
            start.wait()
            results.append(stock_alerts.send(alert_id))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        assert len(sms.get_provider().sent) == 1
        assert results.count("sent") >= 1 and set(results) <= {"sent", "sending"}
        count = get_state().session.scalar(select(func.count()).select_from(StockAlert))
        assert count == 1
    assert alerts(app) == [("sent", "sms", 1)]


def test_the_stock_page_shows_how_many_buyers_wait(texting):
    from tests.test_admin import login

    app, _ = texting
    with app.app_context():
        from koudai_flask.services import staff

        staff.grant(
            "staff:warehouse@shop.cn", "warehouse", email="warehouse@shop.cn", password=PASSWORD
        )
    for phone in (PHONE, "13900139000"):
        client, _ = sign_up(app, phone=phone)
        client.post("/alerts", {"sku": "LJ-L"})
    with app.app_context():
        catalog.create_product(title="碧螺春", skus=[{"code": "BLC", "price": 100, "stock": 0}])
    waiting, _ = sign_up(app, phone="13700137000")
    waiting.post("/alerts", {"sku": "BLC"})
    warehouse = login(app, "warehouse")
    page = warehouse.get("/shop-admin/stock/LJ-L").get_data(as_text=True)
    assert "有 2 位买家设置了到货提醒" in page
    # The stock list: how many wait for each SKU, and the most wanted first.
    listed = warehouse.get("/shop-admin/stock?wanted=1").get_data(as_text=True)
    rows = re.findall(r'data-sku="([^"]+)".*?class="kd-waiting"[^>]*>(\d*)<', listed, re.S)
    assert rows == [("LJ-L", "2"), ("BLC", "1")]
    dashboard = warehouse.get("/shop-admin/").get_data(as_text=True)
    assert '<dd id="buyers-waiting"><a href="/shop-admin/stock?wanted=1">3</a></dd>' in dashboard
    everything = warehouse.get("/shop-admin/stock").get_data(as_text=True)
    assert re.findall(r'data-sku="([^"]+)".*?class="kd-waiting"[^>]*>(\d*)<', everything, re.S) == [
        ("BLC", "1"),
        ("LJ-S", ""),
        ("LJ-L", "2"),
    ]


def test_an_alert_a_dead_worker_left_sending_is_sent_by_a_later_sweep(texting):
    app, _ = texting
    _, customer_id = sign_up(app, phone=PHONE)
    with app.app_context():
        alert_id = stock_alerts.subscribe(customer_id, "LJ-L").id
        inventory.adjust("LJ-L", 1, reason="delivery")
        claimed = utcnow() - stock_alerts.STALE_SENDING
        with unit_of_work() as session:  # claimed, then the worker died before sending
            row = session.get(StockAlert, alert_id)
            row.status, row.attempts, row.claimed_at = "sending", 1, claimed + timedelta(minutes=1)
        assert stock_alerts.sweep() == 0  # a recent claim: its worker may still send it
        with unit_of_work() as session:
            session.get(StockAlert, alert_id).claimed_at = claimed - timedelta(seconds=1)
        assert stock_alerts.sweep() == 1
        assert len(sms.get_provider().sent) == 1
    assert alerts(app) == [("sent", "sms", 2)]


def test_the_shops_own_words_are_sent_and_checked_when_saved(texting):
    from koudai_flask.services import notifications

    app, slug = texting
    _, customer_id = sign_up(app, phone=PHONE)
    with app.app_context():
        notifications.save_template(
            "back_in_stock",
            "sms",
            body="【{{ shop_name }}】{{ product }}{{ variant }}补货啦 {{ order_url }}",
        )
        for refused, reason in (
            ({"body": "{{ order_number }} 到了"}, "template_unusable"),  # an order's: none here
            ({"wechat_template_id": "TPL_1"}, "template_id_setting"),
        ):
            channel = "wechat" if "wechat_template_id" in refused else "sms"
            with pytest.raises(ValidationError) as error:
                notifications.save_template("back_in_stock", channel, **refused)
            assert error.value.reason == reason
            if reason == "template_unusable":
                assert error.value.detail["variables"] == (
                    "shop_name, product, variant, status, order_url, event"
                )
        stock_alerts.subscribe(customer_id, "LJ-L")
        inventory.adjust("LJ-L", 1, reason="delivery")
        stock_alerts.sweep()
        [sent] = sms.get_provider().sent
        assert sent.text == (
            f"【Koudai Shop】龙井茶大罐补货啦 http://shop.example.com/shop/products/{slug}"
        )


def test_an_erp_reads_how_many_buyers_wait_through_the_api(texting):
    from tests.api_support import API, OWNER, make_key

    app, _ = texting
    with app.app_context():
        from koudai_flask.services import staff

        staff.grant(OWNER, "owner", email="owner@shop.cn", password=PASSWORD)
    for phone in (PHONE, "13900139000"):
        client, _ = sign_up(app, phone=phone)
        client.post("/alerts", {"sku": "LJ-L"})
    headers = make_key(app, ["stock.adjust"])
    read = app.test_client().get(f"{API}/stock/LJ-L", headers=headers).get_json()
    assert (read["available"], read["buyers_waiting"]) == (0, 2)
    other = app.test_client().get(f"{API}/stock/LJ-S", headers=headers).get_json()
    assert (other["available"], other["buyers_waiting"]) == (3, 0)
