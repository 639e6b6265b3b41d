"""A buyer on a phone buys a shirt and pays with WeChat Pay (the loopback sandbox)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer, WechatPaySandbox
from koudai_flask.extension import get_state
from koudai_flask.models import Order, Payment
from koudai_flask.services import catalog, inventory
from tests.e2e.conftest import sqlite_shop


@pytest.fixture
def served_shop(make_app, tmp_path) -> Iterator[tuple[Flask, str]]:
    url = sqlite_shop(tmp_path, "shop.db")
    sandbox = WechatPaySandbox()
    app = make_app(
        url, KOUDAI_WECHATPAY=sandbox.settings_for_client(), KOUDAI_OFFLINE_PAYMENT=False
    )
    with app.app_context():
        catalog.create_product(
            title="亚麻衬衫 Linen shirt",
            slug="linen-shirt",
            options=["color", "size"],
            featured=True,
            skus=[
                {
                    "code": "LS-W-M",
                    "price": 12900,
                    "attributes": {"color": "白 White", "size": "M"},
                    "stock": 3,
                },
                {
                    "code": "LS-W-L",
                    "price": 12900,
                    "attributes": {"color": "白 White", "size": "L"},
                    "stock": 0,
                },
                {
                    "code": "LS-B-M",
                    "price": 13900,
                    "attributes": {"color": "蓝 Blue", "size": "M"},
                    "stock": 2,
                },
            ],
        )
    server = LoopbackServer(app)
    try:
        yield app, server.url
    finally:
        server.stop()
        sandbox.stop()


def test_buy_a_shirt_and_pay_with_wechatpay(served_shop, phone, shots):
    app, base = served_shop
    page = phone
    page.goto(f"{base}/shop/")
    assert page.locator("#featured .kd-card").count() == 1
    shots(page, "home")

    page.locator("#featured .kd-card a").first.click()
    page.wait_for_selector("#buy")
    # Pick blue, then M: the L of white is sold out and its button is disabled.
    page.locator('.kd-option[data-option="color"] .kd-choice[data-value="蓝 Blue"]').click()
    page.locator('.kd-option[data-option="size"] .kd-choice[data-value="M"]').click()
    assert page.locator("#price").inner_text() == "¥139.00"
    page.locator('.kd-option[data-option="color"] .kd-choice[data-value="白 White"]').click()
    assert page.locator('.kd-option[data-option="size"] .kd-choice[data-value="L"]').is_disabled()
    page.locator('.kd-option[data-option="color"] .kd-choice[data-value="蓝 Blue"]').click()
    shots(page, "product")
    page.locator("#add-to-cart").click()
    page.wait_for_url("**/shop/cart")
    assert page.locator("#total").inner_text() == "¥139.00"
    shots(page, "cart")

    page.locator("#checkout").click()
    page.fill("input[name=name]", "韩梅梅")
    page.fill("input[name=phone]", "1380013800o")  # a letter o for a zero
    page.fill("input[name=province]", "浙江省")
    page.fill("input[name=city]", "杭州市")
    page.fill("input[name=street]", "文三路 100 号")
    shots(page, "checkout")
    page.locator("#place-order").click()
    mark = page.locator('[data-error="phone"]')
    assert mark.inner_text() == "手机号格式不正确。"
    assert mark.is_visible() and page.input_value("input[name=street]") == "文三路 100 号"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shots(page, "checkout-refused")
    page.fill("input[name=phone]", "13800138000")
    page.locator("#place-order").click()
    page.wait_for_url("**/pay")
    assert page.locator("#amount").inner_text() == "¥139.00"
    shots(page, "pay")

    page.locator("#pay-now").click()  # WeChat Pay H5: off to the (sandbox) cashier
    page.wait_for_selector("text=确认支付")
    shots(page, "cashier")
    page.locator("button[type=submit]").click()
    page.wait_for_url("**/result")
    assert page.locator("#result").get_attribute("data-status") == "paid"
    shots(page, "paid")

    page.locator("text=我的订单").click()
    assert "已付款" in page.locator("#orders").inner_text()
    shots(page, "my-orders")

    with app.app_context():
        session = get_state().session
        order = session.scalar(select(Order))
        assert (order.status, order.total) == ("paid", 13900)
        assert session.scalar(select(Payment.provider)) == "wechatpay"
        assert inventory.available("LS-B-M") == 1
