"""A customer-service agent ships a paid order; the buyer's page shows it shipped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.services import catalog, orders, staff
from tests.e2e.conftest import PHONE, PHONE_UA, sqlite_shop, staff_login

PASSWORD = "correct-horse-battery"


@pytest.fixture
def served(make_app, tmp_path) -> Iterator[tuple[Flask, str]]:
    url = sqlite_shop(tmp_path, "shop.db")
    app = make_app(url)
    with app.app_context():
        catalog.create_product(
            title="青瓷茶杯 Celadon cup",
            slug="cup",
            skus=[{"code": "CUP", "price": 5800, "stock": 5}],
        )
        staff.grant("staff:cs@shop.cn", "customer_service", email="cs@shop.cn", password=PASSWORD)
        staff.grant("staff:wh@shop.cn", "warehouse", email="wh@shop.cn", password=PASSWORD)
    server = LoopbackServer(app)
    try:
        yield app, server.url
    finally:
        server.stop()


def test_an_agent_ships_and_the_buyer_sees_it(served, browser, shots):
    app, base = served
    buyer = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, locale="zh-CN").new_page()
    buyer.goto(f"{base}/shop/products/cup")
    buyer.locator("#add-to-cart").click()
    buyer.locator("#checkout").click()
    buyer.fill("input[name=name]", "李雷")
    buyer.fill("input[name=phone]", "13800138000")
    buyer.fill("input[name=street]", "文三路 100 号")
    buyer.locator("#place-order").click()
    buyer.wait_for_url("**/pay")
    number = buyer.url.split("/")[-2]
    with app.app_context():
        orders.mark_paid(number, amount=6800, transaction_id="cash-1", provider="offline")

    tablet = browser.new_context(viewport={"width": 768, "height": 1024}, locale="zh-CN")
    agent = tablet.new_page()
    staff_login(agent, base, "cs@shop.cn", PASSWORD)
    agent.locator(".kd-menu a", has_text="订单").click()
    agent.select_option("select[name=status]", "paid")
    agent.locator("#filters button[type=submit]").click()
    shots(agent, "paid-orders")
    agent.locator(f'tr[data-number="{number}"] a').click()
    agent.select_option("select[name=carrier]", "shunfeng")
    agent.fill("input[name=tracking_number]", "SF1234567890")
    shots(agent, "ship-form")
    agent.locator("#ship").click()
    assert agent.locator("#status").get_attribute("data-status") == "shipped"
    shots(agent, "shipped")

    buyer.goto(f"{base}/shop/orders/{number}")
    assert buyer.locator("#status").get_attribute("data-status") == "shipped"
    assert "SF1234567890" in buyer.locator("#tracking").inner_text()
    shots(buyer, "buyer-sees-shipped")
    tablet.close()
    buyer.context.close()
