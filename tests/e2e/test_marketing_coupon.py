"""A buyer on a phone sees a limited-time price, applies a coupon at checkout and pays less."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.models import Coupon, LimitedPrice, Order
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, inventory
from tests.e2e.conftest import sqlite_shop


def test_a_coupon_at_checkout_on_a_phone(make_app, tmp_path, phone, shots):
    url = sqlite_shop(tmp_path, "coupon.db")
    app = make_app(url, KOUDAI_SHIPPING_FEE=0)
    with app.app_context():
        catalog.create_product(
            title="龙井茶", slug="longjing", skus=[{"code": "LJ", "price": 8800, "stock": 5}]
        )
        session = get_state().session
        now = utcnow()
        session.add(
            LimitedPrice(
                sku_id=inventory.get_sku(session, "LJ").id,
                price=6800,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=1),
            )
        )
        session.add(Coupon(code="TEA10", name="茶友券", kind="fixed", value=1000, used=0))
        session.commit()
    server = LoopbackServer(app)
    try:
        phone.goto(f"{server.url}/shop/products/longjing")
        expect(phone.locator("del.kd-was")).to_have_text("¥88.00")
        shots(phone, "product")
        phone.locator("#add-to-cart").click()
        phone.wait_for_url("**/shop/cart")
        phone.locator("#checkout").click()
        phone.wait_for_url("**/shop/checkout")
        phone.fill("input[name=coupon]", "tea10")
        phone.locator("#apply-coupon").click()
        expect(phone.locator("#coupon-applied")).to_be_visible()
        expect(phone.locator("#total")).to_have_text("¥58.00")
        shots(phone, "coupon-applied")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
        for name, value in (
            ("name", "李雷"),
            ("phone", "13800138000"),
            ("province", "浙江省"),
            ("city", "杭州市"),
            ("street", "文三路 100 号"),
        ):
            phone.fill(f"#checkout-form input[name={name}]", value)
        phone.locator("#place-order").click()
        phone.wait_for_url("**/pay")
        shots(phone, "pay")
    finally:
        server.stop()
    with app.app_context():
        session = get_state().session
        order = session.scalar(select(Order))
        assert (order.subtotal, order.discount, order.total) == (6800, 1000, 5800)
        assert session.scalar(select(Coupon.used)) == 1
