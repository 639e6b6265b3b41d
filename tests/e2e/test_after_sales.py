"""A buyer on a phone asks for a refund, the owner declines it with a reason, the buyer
reads it; every page involved reads well and fits the phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.models import Order
from koudai_flask.services import catalog, customers, orders, staff
from tests.e2e.conftest import buyer_login, sqlite_shop, staff_login

CHECK = (Path(__file__).parent / "readability.js").read_text()
PASSWORD = "correct-horse-battery"


def fits_and_reads(page: Any) -> list[str]:
    found = [str(problem) for problem in page.evaluate(CHECK)]
    if page.evaluate("document.documentElement.scrollWidth") > 375:
        found.append(f"{page.url}: wider than the phone")
    return found


def test_a_refund_asked_and_declined_on_phones(make_app, tmp_path, browser, shots):
    app = make_app(sqlite_shop(tmp_path, "after-sales.db"), KOUDAI_OFFLINE_PAYMENT=True)
    with app.app_context():
        catalog.create_product(
            title="白瓷盖碗 Gaiwan", slug="gaiwan", skus=[{"code": "GW", "price": 8800, "stock": 4}]
        )
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        buyer = customers.register(password="buyer-pass-1", email="mei@buyers.cn", name="韩梅梅")
        number = orders.place(
            channel="web", lines=[{"sku": "GW", "quantity": 1}], customer=buyer
        ).number
        orders.mark_paid(number, amount=8800, transaction_id="t1", provider="offline")
    server = LoopbackServer(app)
    phone = {"viewport": {"width": 375, "height": 812}, "locale": "zh-CN", "is_mobile": True}
    found: list[str] = []
    try:
        shop = browser.new_context(**phone).new_page()
        buyer_login(shop, server.url, "mei@buyers.cn", "buyer-pass-1")
        shop.goto(f"{server.url}/shop/orders/{number}")
        shop.locator("#refund summary").click()
        shop.locator("input[name=reason][value=not_as_described]").check()
        shop.fill("textarea[name=details]", "釉色和图片不一样")
        found += fits_and_reads(shop)
        shots(shop, "refund-form")
        shop.locator("#ask-refund").click()
        expect(shop.locator("#refund-asked")).to_contain_text("釉色和图片不一样")
        expect(shop.locator("#status")).to_have_attribute("data-status", "refunding")

        admin = browser.new_context(**phone).new_page()
        staff_login(admin, server.url, "owner@shop.cn", PASSWORD)
        admin.goto(f"{server.url}/shop-admin/orders/{number}")
        expect(admin.locator("#refund-request")).to_contain_text("釉色和图片不一样")
        found += fits_and_reads(admin)
        shots(admin, "refund-request")
        admin.fill("#decline-refund-form input[name=reason]", "釉色以实物为准，每只略有不同")
        admin.locator("#decline-refund").click()
        expect(admin.locator("#status")).to_have_attribute("data-status", "paid")

        shop.reload()
        expect(shop.locator("#refund-declined")).to_contain_text("釉色以实物为准")
        found += fits_and_reads(shop)
        shots(shop, "declined")
        shop.locator("#buy-again").click()
        shop.wait_for_url("**/shop/cart")
        expect(shop.locator("main")).to_contain_text("白瓷盖碗")
    finally:
        server.stop()
    assert found == []
    with app.app_context():
        order = get_state().session.scalar(select(Order).where(Order.number == number))
        assert order.status == "paid"
