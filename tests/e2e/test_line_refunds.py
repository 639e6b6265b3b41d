"""The owner, on a phone, refunds one item of an order that has not shipped; the buyer sees
it on the order, and the rest ships. Every page involved reads well and fits the phone."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.models import Order
from koudai_flask.services import catalog, customers, inventory, orders, staff
from tests.e2e.conftest import buyer_login, sqlite_shop, staff_login
from tests.e2e.test_after_sales import PASSWORD, fits_and_reads


def test_one_item_refunded_before_shipping_on_phones(make_app, tmp_path, browser, shots):
    app = make_app(sqlite_shop(tmp_path, "line-refunds.db"), KOUDAI_OFFLINE_PAYMENT=True)
    with app.app_context():
        catalog.create_product(
            title="白瓷盖碗 Gaiwan", slug="gaiwan", skus=[{"code": "GW", "price": 8800, "stock": 4}]
        )
        catalog.create_product(
            title="公道杯 Pitcher", slug="pitcher", skus=[{"code": "GD", "price": 6600, "stock": 4}]
        )
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        buyer = customers.register(password="buyer-pass-1", email="lei@buyers.cn", name="李雷")
        order = orders.place(
            channel="web",
            lines=[{"sku": "GW", "quantity": 2}, {"sku": "GD", "quantity": 1}],
            customer=buyer,
        )
        number = order.number
        orders.mark_paid(number, amount=order.total, transaction_id="t1", provider="offline")
    server = LoopbackServer(app)
    phone = {"viewport": {"width": 375, "height": 812}, "locale": "zh-CN", "is_mobile": True}
    found: list[str] = []
    try:
        admin = browser.new_context(**phone).new_page()
        staff_login(admin, server.url, "owner@shop.cn", PASSWORD)
        admin.goto(f"{server.url}/shop-admin/orders/{number}")
        admin.locator("#refund-lines summary").click()
        admin.fill("input[name=refund-GW]", "1")
        admin.fill("#refund-form input[name=reason]", "少一只，缺货")
        found += fits_and_reads(admin)
        shots(admin, "refund-lines")
        admin.locator("#refund").click()
        expect(admin.locator("#status")).to_have_attribute("data-status", "paid")
        expect(admin.locator("main")).to_contain_text("88.00")  # the amount refunded
        found += fits_and_reads(admin)
        admin.fill("input[name=tracking_number]", "SF600001")
        admin.locator("#ship").click()
        expect(admin.locator("#status")).to_have_attribute("data-status", "shipped")

        shop = browser.new_context(**phone).new_page()
        buyer_login(shop, server.url, "lei@buyers.cn", "buyer-pass-1")
        shop.goto(f"{server.url}/shop/orders/{number}")
        expect(shop.locator(".kd-line-refunded")).to_have_text("已退 1 件")
        expect(shop.locator("#timeline")).to_contain_text("部分退款")
        found += fits_and_reads(shop)
        shots(shop, "line-refunded")
    finally:
        server.stop()
    assert found == []
    with app.app_context():
        order = get_state().session.scalar(select(Order).where(Order.number == number))
        assert (order.status, order.refunded_amount) == ("shipped", 8800)
        assert inventory.available("GW") == 3  # one shipped, one back on the shelf
