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
from tests.test_freight import BY_PIECE


def to_checkout(phone, base):
    """The buyer li@example.com signs in, puts the tea in the cart and opens the checkout."""
    buyer_login(phone, base, "li@example.com", "buyer-pass-1")
    to_checkout_as_signed_in(phone, base)


def placed_order(phone, app):
    """Place the order on the checkout page; the order, once the pay page shows."""
    phone.locator("#place-order").click()
    phone.wait_for_url("**/pay")
    with app.app_context():
        return get_state().session.scalar(select(Order))


def to_checkout_as_signed_in(phone, base):
    """The signed-in buyer puts the tea in the cart and opens the checkout."""
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
        order = placed_order(phone, app)
    finally:
        server.stop()
    assert order.address["street"] == "文三路 100 号"


def tea_by_template(make_app, tmp_path, name):
    """A shop whose one tea (¥88, 5 in stock) ships by ``BY_PIECE`` (¥10; ¥20 to 新疆; not to
    台湾)."""
    app = make_app(sqlite_shop(tmp_path, name), KOUDAI_FREE_SHIPPING_OVER=None)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner")
        template = shipping_templates.save_template("staff:owner@shop.cn", None, BY_PIECE)
        product = catalog.create_product(
            title="龙井茶", slug="longjing", skus=[{"code": "LJ", "price": 8800, "stock": 5}]
        )
        get_state().session.get(Product, product.id).shipping_template_id = template.id
        get_state().session.commit()
    return app


def test_choosing_another_address_shows_its_shipping_fee(make_app, tmp_path, phone, shots):
    """With a shipping template dearer to 新疆, picking the 新疆 address reloads the page
    with that address chosen and its fee; the order is charged it."""
    app = tea_by_template(make_app, tmp_path, "fees.db")
    with app.app_context():
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
        expect(phone.locator("#shipping")).to_have_text("¥20.00")
        expect(phone.locator(f'input[name=address_id][value="{far}"]')).to_be_checked()
        shots(phone, "far-address")
        order = placed_order(phone, app)
    finally:
        server.stop()
    assert (order.shipping_fee, order.total) == (2000, 8800 + 2000)


def test_a_typed_province_prices_the_totals_before_the_order(make_app, tmp_path, phone, shots):
    """A buyer with no saved address types one: the fee and total follow the province as it
    is typed, goods not delivered there are named at once, and the order is charged the fee
    that was shown."""
    app = tea_by_template(make_app, tmp_path, "typed.db")
    with app.app_context():
        customers.register(password="buyer-pass-1", email="li@example.com", name="李雷")
    server = LoopbackServer(app)
    try:
        to_checkout(phone, server.url)
        expect(phone.locator("#shipping-to")).to_have_text("估算，按收货地址计算")
        province = phone.locator("#checkout-form input[name=province]")
        province.fill("新疆维吾尔自治区")
        expect(phone.locator("#shipping-to")).to_have_text("寄往新疆")
        expect(phone.locator("#shipping")).to_have_text("¥20.00")
        expect(phone.locator("#total")).to_have_text("¥108.00")
        province.fill("台湾")
        expect(phone.locator("#undeliverable")).to_contain_text("龙井茶")
        shots(phone, "typed-not-delivered")
        province.fill("浙江省")
        expect(phone.locator("#shipping-to")).to_have_text("寄往浙江")
        expect(phone.locator("#undeliverable")).to_have_count(0)
        expect(phone.locator("#total")).to_have_text("¥98.00")
        shots(phone, "typed-province")
        typed = {"name": "李雷", "phone": "13800138000", "city": "杭州市", "street": "文三路 1 号"}
        for name, value in typed.items():
            phone.fill(f"#checkout-form input[name={name}]", value)
        order = placed_order(phone, app)
    finally:
        server.stop()
    assert (order.shipping_fee, order.total) == (1000, 9800)


def test_the_address_book_on_a_phone(make_app, tmp_path, phone, shots):
    """From 我的订单 to 收货地址: add two addresses, make the second the default, delete the
    first; the checkout then offers the one left."""
    app = make_app(sqlite_shop(tmp_path, "book.db"), KOUDAI_SHIPPING_FEE=0)
    with app.app_context():
        catalog.create_product(
            title="龙井茶", slug="longjing", skus=[{"code": "LJ", "price": 8800, "stock": 5}]
        )
        customers.register(password="buyer-pass-1", email="li@example.com", name="李雷")
    server = LoopbackServer(app)
    try:
        buyer_login(phone, server.url, "li@example.com", "buyer-pass-1")
        phone.goto(f"{server.url}/shop/orders")
        phone.locator("#my-addresses").click()
        phone.wait_for_url("**/shop/account/addresses")
        for name, street in (("李雷", "文三路 1 号"), ("韩梅梅", "龙井路 2 号")):
            form = phone.locator("#new-address")
            form.locator("input[name=name]").fill(name)
            form.locator("input[name=phone]").fill("13800138000")
            form.locator("input[name=province]").fill("浙江省")
            form.locator("input[name=street]").fill(street)
            form.locator("button[type=submit]").click()
            expect(phone.locator("#addresses")).to_contain_text(street)
        cards = phone.locator("#addresses .kd-address")
        expect(cards).to_have_count(2)
        second = cards.filter(has_text="龙井路 2 号")
        second.get_by_role("button", name="设为默认").click()
        expect(phone.locator("#addresses .kd-address").first).to_contain_text("龙井路 2 号")
        expect(phone.locator("#addresses .kd-address").first.locator(".kd-default")).to_have_text(
            "默认"
        )
        shots(phone, "address-book")
        phone.locator("#addresses .kd-address", has_text="文三路 1 号").get_by_role(
            "button", name="删除"
        ).click()
        expect(phone.locator("#addresses .kd-address")).to_have_count(1)
        to_checkout_as_signed_in(phone, server.url)
        expect(phone.locator(".kd-addresses")).to_contain_text("龙井路 2 号")
        expect(phone.locator(".kd-addresses")).not_to_contain_text("文三路 1 号")
    finally:
        server.stop()
