"""A buyer with an address book sees the new address's fields only when choosing one, and
the shipping fee of the address chosen."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.models import Order, Product
from koudai_flask.services import catalog, customers, shipping_templates, staff
from tests.e2e.conftest import buyer_login, sqlite_shop


def to_checkout(phone, base):
    """The buyer li@example.com signs in, puts the tea in the cart and opens the checkout."""
    buyer_login(phone, base, "li@example.com", "buyer-pass-1")
    phone.goto(f"{base}/shop/products/longjing")
    phone.locator("#add-to-cart").click()
    phone.wait_for_url("**/shop/cart")
    phone.locator("#checkout").click()
    phone.wait_for_url("**/shop/checkout")


def test_the_new_address_fields_follow_the_choice(make_app, tmp_path, phone, shots):
    app = make_app(sqlite_shop(tmp_path, "addresses.db"), KOUDAI_SHIPPING_FEE=0)
    with app.app_context():
        catalog.create_product(
            title="龙井茶", slug="longjing", skus=[{"code": "LJ", "price": 8800, "stock": 5}]
        )
        buyer = customers.register(password="buyer-pass-1", email="li@example.com", name="李雷")
        customers.add_address(buyer.id, name="李雷", phone="13800138000", street="文三路 100 号")
    server = LoopbackServer(app)
    try:
        to_checkout(phone, server.url)
        street = phone.locator("#checkout-form input[name=street]")
        expect(street).to_be_hidden()  # the saved address is chosen
        shots(phone, "saved-address")
        phone.locator('input[name=address_id][value=""]').check()
        expect(street).to_be_visible()
        typed = {"name": "韩梅梅", "phone": "13900139000", "street": "龙井路 18 号"}
        for name, value in typed.items():
            phone.fill(f"#checkout-form input[name={name}]", value)
        # Back to the saved address: the typed one is hidden and not sent with it.
        phone.locator('input[name=address_id]:not([value=""])').check()
        expect(street).to_be_hidden()
        shots(phone, "typed-then-saved")
        phone.locator("#place-order").click()
        phone.wait_for_url("**/pay")
    finally:
        server.stop()
    with app.app_context():
        order = get_state().session.scalar(select(Order))
        assert order.address["street"] == "文三路 100 号"


def test_choosing_another_address_shows_its_shipping_fee(make_app, tmp_path, phone, shots):
    """With a shipping template dearer to 新疆, picking the 新疆 address reloads the page
    with that address chosen and its fee; the order is charged it."""
    app = make_app(sqlite_shop(tmp_path, "fees.db"), KOUDAI_FREE_SHIPPING_OVER=None)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner")
        template = shipping_templates.save_template(
            "staff:owner@shop.cn",
            None,
            {
                "name": "常规",
                "basis": "piece",
                "first": 1,
                "first_fee": 1000,
                "additional": 1,
                "additional_fee": 500,
                "areas": [
                    {
                        "provinces": ["新疆"],
                        "first": 1,
                        "first_fee": 2500,
                        "additional": 1,
                        "additional_fee": 1000,
                    }
                ],
            },
        )
        product = catalog.create_product(
            title="龙井茶", slug="longjing", skus=[{"code": "LJ", "price": 8800, "stock": 5}]
        )
        get_state().session.get(Product, product.id).shipping_template_id = template.id
        get_state().session.commit()
        buyer = customers.register(password="buyer-pass-1", email="li@example.com", name="李雷")
        home = {"name": "李雷", "phone": "13800138000", "street": "文三路 100 号"}
        customers.add_address(buyer.id, province="浙江省", **home)
        far = customers.add_address(buyer.id, province="新疆维吾尔自治区", **home).id
    server = LoopbackServer(app)
    try:
        to_checkout(phone, server.url)
        expect(phone.locator("#shipping-to")).to_have_text("寄往浙江")
        expect(phone.locator("#shipping")).to_have_text("¥10.00")
        phone.locator(f'input[name=address_id][value="{far}"]').check()
        phone.wait_for_url(f"**/shop/checkout?address_id={far}")
        expect(phone.locator("#shipping-to")).to_have_text("寄往新疆")
        expect(phone.locator("#shipping")).to_have_text("¥25.00")
        expect(phone.locator(f'input[name=address_id][value="{far}"]')).to_be_checked()
        shots(phone, "far-address")
        phone.locator("#place-order").click()
        phone.wait_for_url("**/pay")
    finally:
        server.stop()
    with app.app_context():
        order = get_state().session.scalar(select(Order))
        assert (order.shipping_fee, order.total) == (2500, 8800 + 2500)
