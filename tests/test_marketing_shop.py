"""Marketing in the shop's pages: struck-through prices, savings, a coupon at checkout."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import Coupon, LimitedPrice, Order, Promotion
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, inventory, staff
from tests.shop_client import CHECKOUT_TOKEN, ShopClient

ADDRESS = {
    "name": "李雷",
    "phone": "13800138000",
    "province": "浙江省",
    "city": "杭州市",
    "district": "西湖区",
    "street": "文三路 100 号",
    "note": "",
}


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    app = make_app(database_url, KOUDAI_SHIPPING_FEE=800, KOUDAI_FREE_SHIPPING_OVER=50000)
    with app.app_context():
        catalog.create_product(
            title="Green tea",
            slug="green-tea",
            options=["size"],
            skus=[
                {"code": "TEA-S", "price": 5000, "attributes": {"size": "S"}, "stock": 10},
                {"code": "TEA-L", "price": 9000, "attributes": {"size": "L"}, "stock": 10},
            ],
        )
        session = get_state().session
        now = utcnow()
        session.add(
            LimitedPrice(
                sku_id=inventory.get_sku(session, "TEA-L").id,
                name="Flash sale",
                price=7000,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=3),
            )
        )
        session.add(Promotion(name="Spend 150", tiers=[{"threshold": 15000, "off": 1500}]))
        session.add(
            Coupon(code="TEA10", name="Tea ten", kind="fixed", value=1000, used=0, total_limit=1)
        )
        session.commit()
    return app


def in_english(path: str) -> str:
    return path + ("&" if "?" in path else "?") + "lang=en"


def test_the_product_page_strikes_the_catalog_price_through(shop):
    page = ShopClient(shop).text(in_english("/products/green-tea"))
    assert (
        '<del class="kd-was">¥90.00</del> <span class="kd-price kd-special">¥70.00</span>' in page
    )
    assert '<span class="kd-price">¥50.00</span>' in page
    assert 'id="limited-price"' in page


def test_the_cart_shows_special_prices_the_full_reduction_and_the_saving(shop):
    client = ShopClient(shop)
    client.add_to_cart("TEA-L", 2)
    client.add_to_cart("TEA-S", 1)
    page = client.text(in_english("/cart"))
    assert '<del class="kd-was">¥90.00</del> <span class="kd-price">¥70.00</span>' in page
    # 2 x 70 + 50 = 190.00; 150 reached: 15.00 off; shipping 8.00.
    assert 'id="total">¥183.00<' in page
    assert "Spend 150: ¥15.00 off orders of ¥150.00 or more" in page
    assert 'id="saving">¥55.00<' in page  # 2 x 20.00 + 15.00


def test_a_coupon_is_applied_at_checkout_and_redeemed_with_the_order(shop):
    client = ShopClient(shop)
    client.add_to_cart("TEA-S", 1)
    page = client.text(in_english("/checkout?coupon=tea10"))
    assert "Coupon TEA10 applied." in page
    assert 'name="coupon_code" value="TEA10"' in page
    assert 'id="total">¥48.00<' in page  # 50 - 10 + 8 shipping
    form = {"token": CHECKOUT_TOKEN.search(page).group(1), "coupon_code": "TEA10", **ADDRESS}
    response = client.post("/checkout", form)
    assert response.status_code == 302
    with shop.app_context():
        session = get_state().session
        order = session.scalar(select(Order))
        assert (order.subtotal, order.discount, order.shipping_fee, order.total) == (
            5000,
            1000,
            800,
            4800,
        )
        assert session.scalar(select(Coupon.used)) == 1
        number = order.number
    page = client.text(in_english(f"/orders/{number}"))
    assert "Tea ten (¥10.00 off)" in page and 'id="saving">¥10.00<' in page

    # The only use is gone: the next buyer is told so, and nothing is placed.
    other = ShopClient(shop)
    other.add_to_cart("TEA-S", 1)
    page = other.text(in_english("/checkout?coupon=TEA10"))
    assert 'id="coupon-error"' in page and "This coupon has been used up." in page
    assert 'name="coupon_code" value=""' in page
    form = {"token": CHECKOUT_TOKEN.search(page).group(1), "coupon_code": "TEA10", **ADDRESS}
    response = other.post(in_english("/checkout"), form)
    assert response.status_code == 422
    assert "This coupon has been used up." in response.get_data(as_text=True)
    with shop.app_context():
        assert get_state().session.scalar(select(func.count()).select_from(Order)) == 1
        assert inventory.available("TEA-S") == 9


def test_cancelling_in_the_shop_gives_the_coupon_back(shop):
    client = ShopClient(shop)
    client.add_to_cart("TEA-S", 1)
    page = client.text("/checkout?coupon=TEA10")
    form = {"token": CHECKOUT_TOKEN.search(page).group(1), "coupon_code": "TEA10", **ADDRESS}
    client.post("/checkout", form)
    with shop.app_context():
        number = get_state().session.scalar(select(Order.number))
    page = client.text(f"/orders/{number}")
    assert client.post(f"/orders/{number}/cancel").status_code in (302, 303)
    with shop.app_context():
        assert get_state().session.scalar(select(Coupon.used)) == 0


def test_the_admin_order_page_lists_the_discounts(shop):
    client = ShopClient(shop)
    client.add_to_cart("TEA-L", 3)
    page = client.text("/checkout?coupon=TEA10")
    form = {"token": CHECKOUT_TOKEN.search(page).group(1), "coupon_code": "TEA10", **ADDRESS}
    client.post("/checkout", form)
    with shop.app_context():
        staff.grant("staff:boss", "owner", email="boss@shop.cn", password="correct-horse-1")
        number = get_state().session.scalar(select(Order.number))
    admin = shop.test_client()
    login_page = admin.get("/shop-admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    admin.post(
        "/shop-admin/login",
        data={"email": "boss@shop.cn", "password": "correct-horse-1", "csrf_token": token},
    )
    page = admin.get(f"/shop-admin/orders/{number}?lang=en").get_data(as_text=True)
    discounts = re.findall(r'data-plugin="([a-z_]+)"', page)
    assert discounts == ["limited_price", "full_reduction", "coupon"]
    assert "-¥60.00" in page and "-¥15.00" in page and "-¥10.00" in page
