"""The mobile shop through the test client: pages, cart, checkout, orders, accounts."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import CartLine, Customer, Order, OrderEvent, OrderLine
from koudai_flask.services import catalog, customers, inventory, orders
from tests.shop_client import CHECKOUT_TOKEN, ShopClient


@pytest.fixture
def shop(make_app, database_url) -> Flask:
    app = make_app(
        database_url, KOUDAI_SHIPPING_FEE=800, KOUDAI_FREE_SHIPPING_OVER=20000, KOUDAI_PAGE_SIZE=3
    )
    with app.app_context():
        catalog.create_category("服饰 Apparel", "apparel", position=0)
        catalog.create_category("家居 Home", "home", position=1)
        catalog.create_product(
            title="Linen shirt",
            slug="linen-shirt",
            category="apparel",
            options=["color", "size"],
            description="Cool linen for summer",
            skus=[
                {
                    "code": "LS-W-M",
                    "price": 12900,
                    "attributes": {"color": "white", "size": "M"},
                    "stock": 4,
                },
                {
                    "code": "LS-W-L",
                    "price": 12900,
                    "attributes": {"color": "white", "size": "L"},
                    "stock": 0,
                },
                {
                    "code": "LS-B-M",
                    "price": 13900,
                    "attributes": {"color": "blue", "size": "M"},
                    "stock": 2,
                },
            ],
        )
        for n, price in enumerate([3900, 1900, 5900, 2900]):
            catalog.create_product(
                title=f"Mug {n}",
                slug=f"mug-{n}",
                category="home",
                skus=[{"code": f"MUG-{n}", "price": price, "stock": 10}],
            )
    return app


def stock(app: Flask, sku: str) -> int:
    with app.app_context():
        return inventory.available(sku)


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return get_state().session.scalar(select(func.count()).select_from(model))


def register(client: ShopClient, login: str = "buyer@example.com") -> None:
    client.get("/account/register")
    response = client.post(
        "/account/register", {"login": login, "password": "s3cret-pass", "name": "Buyer"}
    )
    assert response.status_code == 302


# -- browsing ---------------------------------------------------------------------------------


def test_home_lists_categories_featured_and_new(shop):
    page = ShopClient(shop).text("/")
    assert '<html lang="zh-CN">' in page
    assert "新品上架" in page  # Chinese by default
    assert page.index("服饰 Apparel") < page.index("家居 Home")
    assert re.findall(r'href="/shop/products/([\w-]+)"', page) == ["mug-3", "mug-2", "mug-1"]


def test_english_on_request_and_remembered(shop):
    client = ShopClient(shop)
    assert "New arrivals" in client.text("/?lang=en")
    assert "New arrivals" in client.text("/")
    assert "新品上架" in client.text("/?lang=zh_CN")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["mug-3", "mug-2", "mug-1"]),
        ("?sort=price_asc", ["mug-1", "mug-3", "mug-0"]),
        ("?sort=price_desc", ["mug-2", "mug-0", "mug-3"]),
        ("?sort=price_asc&page=2", ["mug-2"]),
    ],
)
def test_category_listing_sorts_and_pages(shop, query, expected):
    page = ShopClient(shop).text(f"/c/home{query}")
    assert re.findall(r'href="/shop/products/([\w-]+)"', page) == expected


def test_sales_sort_and_the_last_page(shop):
    with shop.app_context():
        order = orders.place(channel="web", lines=[{"sku": "MUG-1", "quantity": 3}])
        orders.mark_paid(order.number, amount=order.total, transaction_id="t", provider="offline")
        orders.ship(order.number, carrier="yuantong", tracking_number="YT1")
    client = ShopClient(shop)
    assert re.findall(r'/shop/products/([\w-]+)"', client.text("/c/home?sort=sales"))[0] == "mug-1"
    assert client.get("/c/home?page=3").status_code == 404
    assert client.get("/c/nowhere").status_code == 404


def test_search_finds_words_in_titles_and_descriptions(shop):
    client = ShopClient(shop)
    assert re.findall(r'/shop/products/([\w-]+)"', client.text("/search?q=LINEN")) == [
        "linen-shirt"
    ]
    assert re.findall(r'/shop/products/([\w-]+)"', client.text("/search?q=summer")) == [
        "linen-shirt"
    ]
    assert "没有找到商品" in client.text("/search?q=teapot")


def test_product_page_shows_skus_with_stock_and_disables_sold_out(shop):
    response = ShopClient(shop).get("/products/linen-shirt")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert len(response.data) < 100 * 1024  # the page before images
    assert re.search(r'name="sku" value="LS-W-L" disabled', page)
    assert re.search(r'name="sku" value="LS-W-M" checked', page)
    assert "仅剩 2 件" in page and "¥139.00" in page
    assert '"available": 0' in page.replace("&#34;", '"')


def test_option_values_keep_the_merchants_order(shop):
    page = ShopClient(shop).text("/products/linen-shirt")
    assert re.findall(r'class="kd-choice" data-value="(\w+)"', page) == ["white", "blue", "M", "L"]


def test_unknown_and_archived_products_get_the_shop_404(shop):
    with shop.app_context():
        catalog.archive_product("mug-0")
    client = ShopClient(shop)
    for path in ("/products/mug-0", "/products/nope", "/no/such/page"):
        response = client.get(path)
        assert response.status_code == 404
        assert "商城里没有这个页面" in response.get_data(as_text=True)


# -- cart ------------------------------------------------------------------------------------


def test_guest_cart_quantities_and_stock_messages(shop):
    client = ShopClient(shop)
    client.get("/products/linen-shirt")
    assert client.add_to_cart("LS-B-M", 1).status_code == 302
    assert client.add_to_cart("LS-B-M", 2).status_code == 302
    page = client.text("/cart")
    assert 'value="3"' in page and "仅剩 2 件" in page
    assert "请先修改上面标出的商品再结算" in page  # can't check out more than there is
    client.post("/cart/update", {"sku": "LS-B-M", "quantity": 2})
    page = client.text("/cart")
    assert 'id="checkout"' in page
    assert re.search(r'id="total">¥278.00', page)  # 2 × 139.00, free over 200.00
    client.post("/cart/update", {"sku": "LS-B-M", "quantity": 0})
    assert "购物车是空的" in client.text("/cart")


def test_shipping_fee_below_the_free_threshold(shop):
    client = ShopClient(shop)
    client.add_to_cart("MUG-1", 1)
    page = client.text("/cart")
    assert re.search(r'id="shipping">¥8.00', page)
    assert re.search(r'id="total">¥27.00', page)


def test_post_without_csrf_token_is_refused_and_changes_nothing(shop):
    client = ShopClient(shop)
    assert client.post("/cart/add", {"sku": "MUG-1", "quantity": 1}, token=False).status_code == 400
    assert "购物车是空的" in client.text("/cart")
    client.add_to_cart("MUG-1", 1)
    page = client.text("/checkout")
    form = {
        "token": CHECKOUT_TOKEN.search(page).group(1),
        "name": "A",
        "phone": "13800138000",
        "street": "x",
    }
    assert client.post("/checkout", form, token=False).status_code == 400
    assert count(shop, Order) == 0
    assert stock(shop, "MUG-1") == 10


def test_guest_cart_joins_the_account_on_login(shop):
    client = ShopClient(shop)
    register(client)
    client.post("/cart/update", {"sku": "MUG-2", "quantity": 1})
    client.post("/account/logout", {})
    client.add_to_cart("MUG-2", 2)
    client.add_to_cart("MUG-3", 1)
    client.get("/account/login")
    client.post("/account/login", {"login": "buyer@example.com", "password": "s3cret-pass"})
    page = client.text("/cart")
    assert re.search(r'data-sku="MUG-2">.*?value="3"', page, re.S)
    assert count(shop, CartLine) == 2


def test_lines_taken_off_sale_or_sold_out_are_marked_and_block_checkout(shop):
    client = ShopClient(shop)
    register(client)
    for sku in ("MUG-0", "MUG-1", "MUG-2"):
        client.add_to_cart(sku, 1)
    with shop.app_context():
        catalog.archive_product("mug-0")
        inventory.set_on_hand("MUG-1", 0, source="stocktake")
    page = client.text("/cart")
    assert re.search(r'data-sku="MUG-0">.*?已下架', page, re.S)
    assert re.search(r'data-sku="MUG-1">.*?已售罄', page, re.S)
    assert 'id="checkout"' not in page and "请先修改上面标出的商品再结算" in page
    before = (count(shop, Order), stock(shop, "MUG-2"))
    response = client.checkout()  # the form sent anyway, by a page left open
    assert response.status_code == 422
    assert "购物车里有商品已售罄或已下架，请检查购物车。" in response.get_data(as_text=True)
    assert (count(shop, Order), stock(shop, "MUG-2")) == before
    # Taking both lines out leaves a cart that can be bought.
    client.post("/cart/update", {"sku": "MUG-0", "quantity": 0})
    client.post("/cart/update", {"sku": "MUG-1", "quantity": 0})
    assert 'id="checkout"' in client.text("/cart")
    assert client.checkout().status_code == 302
    with shop.app_context():
        lines = get_state().session.scalars(select(OrderLine.sku_code)).all()
    assert lines == ["MUG-2"]


def test_adding_an_item_taken_off_sale_says_so_in_the_buyer_s_language(shop):
    client = ShopClient(shop)
    client.get("/products/mug-1")
    with shop.app_context():
        catalog.archive_product("mug-1")
    response = client.add_to_cart("MUG-1", 1)
    assert response.status_code == 302
    page = client.text("/cart")
    assert "该商品已下架。" in page and "is not on sale" not in page
    assert "购物车是空的" in page


def test_a_guest_line_off_sale_by_login_time_is_left_out_of_the_account_cart(shop):
    client = ShopClient(shop)
    register(client)
    client.post("/account/logout", {})
    client.add_to_cart("MUG-2", 1)
    client.add_to_cart("MUG-3", 2)
    with shop.app_context():
        catalog.archive_product("mug-3")
    client.get("/account/login")
    client.post("/account/login", {"login": "buyer@example.com", "password": "s3cret-pass"})
    page = client.text("/cart")
    assert 'data-sku="MUG-2"' in page and 'data-sku="MUG-3"' not in page
    assert count(shop, CartLine) == 1


# -- checkout and orders -----------------------------------------------------------------------


def test_guest_checkout_places_one_order_even_when_submitted_twice(shop):
    client = ShopClient(shop)
    client.add_to_cart("LS-W-M", 2)
    page = client.text("/checkout")
    form = {
        "token": CHECKOUT_TOKEN.search(page).group(1),
        "name": "李雷",
        "phone": "13800138000",
        "street": "文三路 100 号",
        "note": "请周末送",
    }
    first = client.post("/checkout", form)
    second = client.post("/checkout", form)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert count(shop, Order) == 1
    assert stock(shop, "LS-W-M") == 2
    with shop.app_context():
        order = get_state().session.scalar(select(Order))
        assert (order.total, order.shipping_fee, order.note) == (25800, 0, "请周末送")
        assert order.address["street"] == "文三路 100 号"


def test_checkout_with_too_little_stock_changes_nothing(shop):
    client = ShopClient(shop)
    client.add_to_cart("LS-B-M", 2)
    with shop.app_context():
        inventory.adjust("LS-B-M", -1)
    response = client.checkout()
    assert response.status_code in (409, 422)
    assert count(shop, Order) == 0
    assert stock(shop, "LS-B-M") == 1


def fields(page: str) -> dict[str, dict[str, str]]:
    """Each input's and text area's attributes, by its name."""
    return {
        name: dict(re.findall(r'([\w-]+)="([^"]*)"', attributes))
        for attributes, name in re.findall(r'<(?:input|textarea)([^>]*name="(\w+)"[^>]*)>', page)
    }


def test_the_address_fields_help_a_phone_fill_them(shop):
    client = ShopClient(shop)
    client.add_to_cart("LS-B-M", 1)
    inputs = fields(client.text("/checkout"))
    assert inputs["name"]["autocomplete"] == "shipping name"
    assert (inputs["phone"]["type"], inputs["phone"]["autocomplete"]) == ("tel", "shipping tel")
    assert inputs["province"]["autocomplete"] == "address-level1"
    assert inputs["postcode"]["inputmode"] == "numeric"
    # The lengths are the address schema's: the page stops where the service would refuse.
    lengths = {name: int(inputs[name]["maxlength"]) for name in ("name", "street", "note")}
    assert lengths == {"name": 60, "street": 200, "note": 500}


def test_a_mistyped_address_comes_back_with_each_field_marked_and_nothing_placed(shop):
    client = ShopClient(shop)
    client.add_to_cart("LS-B-M", 1)
    response = client.checkout(name="", phone="138-abc", street="文三路 100 号")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="checkout-form"' in html
    alert = '<p class="kd-error" role="alert">收货人为必填项。 手机号格式不正确。</p>'
    assert alert in html
    marked = dict(re.findall(r'data-error="(\w+)">([^<]+)<', html))
    assert marked == {"name": "收货人为必填项。", "phone": "手机号格式不正确。"}
    assert 'value="文三路 100 号"' in html  # what was typed stays
    assert (count(shop, Order), stock(shop, "LS-B-M")) == (0, 2)

    # The address right, the note too long: the order's own check marks the note.
    long_note = client.checkout(note="x" * 501)
    assert long_note.status_code == 422
    notes = dict(re.findall(r'data-error="(\w+)">([^<]+)<', long_note.get_data(as_text=True)))
    assert notes == {"note": "买家留言最多 500 个字符。"}
    assert (count(shop, Order), stock(shop, "LS-B-M")) == (0, 2)
    assert client.checkout().status_code == 302
    assert (count(shop, Order), stock(shop, "LS-B-M")) == (1, 1)


def test_guest_checkout_off_sends_buyers_to_log_in(make_app, database_url):
    app = make_app(database_url, KOUDAI_GUEST_CHECKOUT=False)
    with app.app_context():
        catalog.create_product(title="Pen", skus=[{"code": "PEN", "price": 500, "stock": 5}])
    client = ShopClient(app)
    client.add_to_cart("PEN", 1)
    response = client.get("/checkout")
    assert response.status_code == 302
    assert response.headers["Location"] == "/shop/account/login?next=/shop/checkout"
    with_query = client.get("/checkout?coupon=SPRING")
    assert (
        with_query.headers["Location"] == "/shop/account/login?next=/shop/checkout?coupon%3DSPRING"
    )


def test_account_checkout_uses_the_address_book(shop):
    client = ShopClient(shop)
    register(client)
    client.add_to_cart("MUG-0", 1)
    assert client.checkout().status_code == 302  # saves the new address
    client.add_to_cart("MUG-0", 1)
    page = client.text("/checkout")
    address_id = re.search(r'name="address_id" value="(\d+)" checked', page).group(1)
    response = client.post(
        "/checkout", {"token": CHECKOUT_TOKEN.search(page).group(1), "address_id": address_id}
    )
    assert response.status_code == 302
    with shop.app_context():
        session = get_state().session
        rows = session.scalars(select(Order).order_by(Order.id)).all()
        assert [o.address["name"] for o in rows] == ["李雷", "李雷"]
        assert {o.customer_id for o in rows} == {session.scalar(select(Customer.id))}
        assert session.scalar(select(func.count()).select_from(CartLine)) == 0


def test_a_saved_address_with_a_new_one_typed_is_asked_about_not_guessed(shop):
    client = ShopClient(shop)
    register(client)
    client.add_to_cart("MUG-0", 1)
    assert client.checkout().status_code == 302  # saves 文三路 100 号
    client.add_to_cart("MUG-0", 1)
    page = client.text("/checkout")
    address_id = re.search(r'name="address_id" value="(\d+)" checked', page).group(1)
    typed = {"name": "韩梅梅", "phone": "13900139000", "street": "龙井路 18 号"}
    response = client.post(
        "/checkout",
        {"token": CHECKOUT_TOKEN.search(page).group(1), "address_id": address_id, **typed},
    )
    assert response.status_code == 422
    assert "您选择了地址簿中的地址，同时又填写了新地址" in response.get_data(as_text=True)
    assert count(shop, Order) == 1
    # Choosing "a new address" uses the one typed.
    assert client.checkout(address_id="", **typed).status_code == 302
    with shop.app_context():
        last = get_state().session.scalars(select(Order).order_by(Order.id.desc())).first()
        assert last.address["street"] == "龙井路 18 号"


def test_buyers_see_only_their_own_orders(shop):
    alice, bob = ShopClient(shop), ShopClient(shop)
    register(alice, "alice@example.com")
    register(bob, "bob@example.com")
    alice.add_to_cart("MUG-0", 1)
    number = alice.checkout().headers["Location"].split("/")[3]
    assert alice.get(f"/orders/{number}").status_code == 200
    assert number in alice.text("/orders")
    assert bob.get(f"/orders/{number}").status_code == 404
    assert bob.get(f"/orders/{number}/pay").status_code == 404
    assert bob.post(f"/orders/{number}/cancel", {}).status_code == 404
    assert number not in bob.text("/orders")
    assert ShopClient(shop).get(f"/orders/{number}").status_code == 404  # a guest, too


def test_my_orders_by_state_with_what_each_holds(shop):
    client = ShopClient(shop)
    register(client)
    placed = []
    for sku, quantity in (("MUG-0", 1), ("MUG-1", 2), ("MUG-2", 1)):
        client.add_to_cart(sku, quantity)
        placed.append(client.checkout().headers["Location"].split("/")[3])
    unpaid, to_ship, to_receive = placed
    with shop.app_context():
        for number in (to_ship, to_receive):
            order = get_state().session.scalar(select(Order).where(Order.number == number))
            orders.mark_paid(number, amount=order.total, transaction_id=number, provider="offline")
        orders.ship(to_receive, carrier="yuantong", tracking_number="YT2001")
    other = ShopClient(shop)
    register(other, "other@example.com")  # another buyer's orders count nowhere
    other.add_to_cart("MUG-3", 1)
    other.checkout()

    def listed(tab: str = "") -> list[str]:
        page = client.text(f"/orders{'?tab=' + tab if tab else ''}")
        return re.findall(r'href="/shop/orders/(KD\d+)"', page)

    assert listed() == [to_receive, to_ship, unpaid]
    assert listed("unpaid") == [unpaid]
    assert listed("to_ship") == [to_ship]
    assert listed("to_receive") == [to_receive]
    assert listed("after_sales") == []
    page = client.text("/orders")
    counts = dict(re.findall(r'data-tab="(\w+)">[^<]+<span class="kd-badge">(\d+)<', page))
    assert counts == {"unpaid": "1", "to_ship": "1", "to_receive": "1"}
    assert "Mug 1" in page and "共 2 件" in page  # the first item, and how many in all
    assert "这里还没有订单。" in client.text("/orders?tab=after_sales")
    assert client.get("/orders?tab=nonsense").status_code == 404


def test_cancel_an_unpaid_order_releases_its_stock(shop):
    client = ShopClient(shop)
    client.add_to_cart("LS-W-M", 3)
    number = client.checkout().headers["Location"].split("/")[3]
    assert stock(shop, "LS-W-M") == 1
    assert client.post(f"/orders/{number}/cancel", {}, token=False).status_code == 400
    assert stock(shop, "LS-W-M") == 1
    client.get(f"/orders/{number}")
    assert client.post(f"/orders/{number}/cancel", {}).status_code == 302
    assert stock(shop, "LS-W-M") == 4
    page = client.text(f"/orders/{number}")
    assert 'data-status="cancelled"' in page
    assert count(shop, OrderEvent) == 2


def test_offline_payment_and_the_order_timeline(shop):
    client = ShopClient(shop)
    client.add_to_cart("MUG-0", 1)
    pay_url = client.checkout().headers["Location"].removeprefix("/shop")
    page = client.text(pay_url)
    assert 'value="offline"' in page
    result = client.post(pay_url, {"provider": "offline"})
    assert result.headers["Location"].endswith("/result")
    assert 'data-status="pending"' in client.text(result.headers["Location"].removeprefix("/shop"))
    number = pay_url.split("/")[2]
    with shop.app_context():
        orders.mark_paid(number, amount=4700, transaction_id="cash-1", provider="offline")
        orders.ship(number, carrier="shunfeng", tracking_number="SF100200300")
    page = client.text(f"/orders/{number}")
    assert "已发货" in page and "顺丰速运 SF100200300" in page
    assert page.count("<li>") >= 3  # placed, paid, shipped in the timeline
    assert client.get(pay_url).status_code == 302  # nothing left to pay


def test_dates_are_shown_in_the_shop_time_zone(shop):
    client = ShopClient(shop)
    client.add_to_cart("MUG-0", 1)
    number = client.checkout().headers["Location"].split("/")[3]
    with shop.app_context():
        order = get_state().session.scalar(select(Order).where(Order.number == number))
        order.created_at = datetime(2026, 1, 1, 16, 30, tzinfo=UTC)
        get_state().session.commit()
    assert "2026-01-02 00:30" in client.text("/orders")  # UTC+8


# -- accounts --------------------------------------------------------------------------------


def test_register_login_logout(shop):
    client = ShopClient(shop)
    register(client, "13912345678")
    assert "退出" in client.text("/")
    client.post("/account/logout", {})
    assert "退出" not in client.text("/")
    client.get("/account/login")
    bad = client.post("/account/login", {"login": "13912345678", "password": "wrong-pass"})
    assert bad.status_code == 401
    good = client.post(
        "/account/login?next=//evil.example", {"login": "13912345678", "password": "s3cret-pass"}
    )
    assert good.headers["Location"] == "/shop/"
    client.get("/account/register")
    again = client.post("/account/register", {"login": "13912345678", "password": "another-1"})
    assert again.status_code == 422
    assert "这个邮箱或手机号已经注册过了，请直接登录。" in again.get_data(as_text=True)


def test_password_managers_know_the_account_fields(shop):
    client = ShopClient(shop)
    login, register = (
        fields(client.text("/account/login")),
        fields(client.text("/account/register")),
    )
    assert login["login"]["autocomplete"] == register["login"]["autocomplete"] == "username"
    assert login["password"]["autocomplete"] == "current-password"
    assert register["password"]["autocomplete"] == "new-password"


def test_password_reset_by_signed_link(shop):
    from koudai_flask.blueprints.shop.account_views import password_reset_requested

    client = ShopClient(shop)
    register(client, "reset@example.com")
    client.post("/account/logout", {})
    sent: list[str] = []

    def capture(app: Flask, customer: Customer, url: str) -> None:
        sent.append(url)

    password_reset_requested.connect(capture)
    try:
        client.get("/account/reset")
        client.post("/account/reset", {"login": "nobody@example.com"})
        assert sent == []
        client.post("/account/reset", {"login": "reset@example.com"})
    finally:
        password_reset_requested.disconnect(capture)
    assert len(sent) == 1
    path = sent[0].split("/shop", 1)[1]
    client.get(path)
    assert client.post(path, {"password": "brand-new-pass"}).status_code == 302
    client.get(path)
    used = client.post(path, {"password": "third-pass-1"})
    assert used.status_code == 400  # a link works once
    assert "重置链接已经用过了，请重新申请。" in used.get_data(as_text=True)
    with shop.app_context():
        assert customers.authenticate("reset@example.com", "brand-new-pass") is not None
    forged = client.post("/account/reset/forged", {"password": "whatever-1"})
    assert forged.status_code == 400
    assert "重置链接无效，请重新申请。" in forged.get_data(as_text=True)


def test_an_expired_reset_link_says_so(shop, monkeypatch):
    from itsdangerous.timed import TimestampSigner

    client = ShopClient(shop)
    register(client, "late@example.com")
    client.post("/account/logout", {})
    with shop.app_context():
        customer = customers.authenticate("late@example.com", "s3cret-pass")
        assert customer is not None
        stamped = TimestampSigner.get_timestamp
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: stamped(self) - 86400)
        token = customers.reset_token(customer, shop.config["SECRET_KEY"])
        monkeypatch.undo()
    client.get(f"/account/reset/{token}")
    expired = client.post(f"/account/reset/{token}", {"password": "brand-new-pass"})
    assert expired.status_code == 400
    assert "重置链接已过期，请重新申请。" in expired.get_data(as_text=True)
    with shop.app_context():
        assert customers.authenticate("late@example.com", "s3cret-pass") is not None


def test_adds_to_one_cart_line_at_once_all_count(make_app, database_url):
    """A double tap on "add to cart": every add counts and none fails on the new line."""
    from koudai_flask.services import cart
    from tests.test_api_idempotency import concurrently

    app = make_app(database_url, KOUDAI_ENGINE_OPTIONS={"pool_size": 10})
    with app.app_context():
        catalog.create_product(
            title="Tap tea", skus=[{"code": "TAP-1", "price": 500, "stock": 500}]
        )
        buyer = customers.for_user("tapper", name="Tapper").id

    def add(_: int) -> dict[str, int]:
        with app.app_context():
            return cart.add(buyer, "TAP-1", 2)

    concurrently(8, add)
    with app.app_context():
        assert cart.stored(buyer) == {"TAP-1": 16}
        assert get_state().session.scalar(select(func.count()).select_from(CartLine)) == 1
        assert cart.add(buyer, "TAP-1", 90) == {"TAP-1": cart.MAX_QUANTITY}  # capped
