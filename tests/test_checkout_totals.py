"""The checkout's totals for a province typed in the new address's form, before the order is
placed: the fee the order will be charged, the goods not delivered there, and nothing
changed, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import Order, StockLevel
from tests.shop_client import ShopClient
from tests.test_freight import tea_shop, text


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    return tea_shop(make_app, database_url)


def totals(buyer: ShopClient, province: str) -> tuple[int, dict[str, str]]:
    """The answer's status and, by element id, the text of each part it shows."""
    answer = buyer.get("/checkout/totals", query_string={"province": province})
    page = answer.get_data(as_text=True)
    parts = {
        found.group(1): text_of(found.group(2))
        for found in re.finditer(r'id="([\w-]+)"[^>]*>(.*?)</(?:dd|small|p)>', page, re.S)
    }
    return answer.status_code, parts


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_totals_follow_the_typed_province_and_match_what_the_order_is_charged(
    shop: Flask,
) -> None:
    buyer = ShopClient(shop)
    buyer.add_to_cart("CUP", 2)
    buyer.add_to_cart("CLOTH", 1)
    status, far = totals(buyer, "新疆维吾尔自治区")
    assert status == 200
    assert far["shipping-to"] == "寄往新疆"
    assert far["shipping"] == "¥38.00"  # the cups ¥20 + ¥10 to 新疆, the cloth's flat ¥8
    assert far["total"] == "¥188.00" and "undeliverable" not in far
    near = totals(buyer, "浙江省")[1]
    assert (near["shipping-to"], near["shipping"]) == ("寄往浙江", "¥23.00")
    unknown = totals(buyer, "")[1]
    assert unknown["shipping-to"] == "估算，按收货地址计算" and unknown["shipping"] == "¥23.00"
    assert totals(buyer, "新疆" + "路" * 40)[1]["shipping-to"] == "估算，按收货地址计算"
    refused = totals(buyer, "台湾省")[1]
    assert refused["undeliverable"] == "茶杯 Cup 不配送到台湾。请换一个收货地址，或从购物车中移除。"
    with shop.app_context():
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(Order)) == 0
        assert session.scalar(select(func.sum(StockLevel.reserved))) == 0
    placed = buyer.checkout(province="新疆维吾尔自治区")
    assert placed.status_code == 302, text(placed)
    with shop.app_context():
        order = get_state().session.scalars(select(Order)).one()
        assert (order.shipping_fee, order.total) == (3800, 18800)


def test_no_totals_without_a_cart_or_a_buyer_where_guests_may_not_buy(
    shop: Flask, make_app: Any, database_url: str
) -> None:
    assert totals(ShopClient(shop), "浙江")[0] == 409  # nothing in the cart
    shop.config["KOUDAI_GUEST_CHECKOUT"] = False
    buyer = ShopClient(shop)
    buyer.add_to_cart("CUP", 1)
    status, parts = totals(buyer, "浙江")
    assert (status, parts) == (401, {})
