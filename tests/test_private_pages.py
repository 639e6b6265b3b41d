"""A buyer's pages and every staff page are kept by no cache (the browser's back button after
signing out on a shared phone or computer included); the public catalog is left to the
host's caching, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from koudai_flask.blueprints.shop import PRIVATE_VIEWS
from tests.shop_client import ShopClient
from tests.test_admin import build, login
from tests.test_freight import tea_shop


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    return tea_shop(make_app, database_url)


def test_a_buyer_s_pages_are_not_stored_and_the_catalog_is_left_alone(shop: Flask) -> None:
    buyer = ShopClient(shop)
    buyer.add_to_cart("CUP", 1)
    placed = buyer.checkout(province="浙江省")
    number = re.search(r"/orders/(\w+)/pay", placed.headers["Location"]).group(1)
    buyer.add_to_cart("POT", 1)
    private = {
        "cart_page": "/cart",
        "checkout_page": "/checkout",
        "checkout_totals": "/checkout/totals?province=浙江",
        "my_orders": "/orders",
        "order_detail": f"/orders/{number}",
        "pay": f"/orders/{number}/pay",
        "payment_result": f"/orders/{number}/result",
        "login": "/account/login",
        "register_account": "/account/register",
        "reset_request": "/account/reset",
        "reset_password": "/account/reset/not-a-token",
        "addresses_page": "/account/addresses",
        "address_edit": "/account/addresses/1/edit",
        "address_add": "POST /account/addresses",
        "alerts_page": "/account/alerts",
        "favourites_page": "/account/favourites",
        "order_address_edit": f"/orders/{number}/address",
    }
    assert set(private) == PRIVATE_VIEWS  # every private view is looked at here
    for view, path in private.items():
        if path.startswith("POST "):
            answer = buyer.post(path.removeprefix("POST "), {"name": ""})
        else:
            answer = buyer.get(path)
        assert answer.status_code < 500, (view, answer.status_code)
        assert answer.headers.get("Cache-Control") == "private, no-store", (view, path)
    for path in ("/", "/products", "/search?q=茶"):
        answer = buyer.get(path)
        assert answer.status_code == 200 and "no-store" not in answer.headers.get(
            "Cache-Control", ""
        ), path


def test_every_staff_page_is_not_stored(make_app: Any, database_url: str) -> None:
    app, numbers = build(make_app, database_url)
    client = login(app, "owner")
    for path in (
        "/shop-admin/",
        "/shop-admin/orders",
        f"/shop-admin/orders/{numbers['web']}",
        "/shop-admin/customers",
        "/shop-admin/orders/export.csv",
    ):
        answer = client.get(path)
        assert answer.headers.get("Cache-Control") == "no-store", (path, answer.status_code)
    assert app.test_client().get("/shop-admin/login").headers["Cache-Control"] == "no-store"
