"""The buyer's address book (收货地址): added, changed, made the default and deleted by its
owner only, refused field by field with nothing saved, and offered by the checkout, on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from koudai_flask.extension import get_state
from koudai_flask.models import Address
from koudai_flask.services import catalog, customers
from tests.shop_client import ShopClient

HOME = {"name": "李雷", "phone": "13800138000", "province": "浙江省", "city": "杭州市"}


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    app = make_app(database_url)
    with app.app_context():
        catalog.create_product(title="龙井茶", skus=[{"code": "LJ", "price": 8800, "stock": 5}])
        for email in ("li@buyers.cn", "han@buyers.cn"):
            customers.register(password="buyer-pass-1", email=email, name=email[:3])
    return app


def signed_in(app: Flask, email: str) -> ShopClient:
    client = ShopClient(app)
    client.get("/account/login")
    client.post("/account/login", {"login": email, "password": "buyer-pass-1"})
    return client


def book(app: Flask, email: str) -> list[tuple[str, str, bool]]:
    """(recipient, street, default) of the buyer's addresses, newest first."""
    with app.app_context():
        customer = customers.find_by_login(email)
        return [(a.name, a.street, a.is_default) for a in customers.addresses(customer.id)]


def ids(app: Flask, email: str) -> dict[str, int]:
    with app.app_context():
        customer = customers.find_by_login(email)
        return {a.street: a.id for a in customers.addresses(customer.id)}


def test_a_buyer_keeps_an_address_book_the_checkout_offers(shop: Flask) -> None:
    li = signed_in(shop, "li@buyers.cn")
    assert "还没有保存的收货地址。" in li.text("/account/addresses")
    added = li.post("/account/addresses", {**HOME, "street": "文三路 1 号"})
    assert added.status_code == 303 and added.headers["Location"] == "/shop/account/addresses"
    li.post("/account/addresses", {**HOME, "street": "龙井路 2 号", "name": "韩梅梅"})
    # The first address is the default; a later one is not unless asked.
    assert book(shop, "li@buyers.cn") == [
        ("李雷", "文三路 1 号", True),
        ("韩梅梅", "龙井路 2 号", False),
    ]
    second = ids(shop, "li@buyers.cn")["龙井路 2 号"]
    assert li.post(f"/account/addresses/{second}/default").status_code == 303
    assert book(shop, "li@buyers.cn")[0] == ("韩梅梅", "龙井路 2 号", True)
    page = li.text("/account/addresses")
    assert "默认地址已更改。" in page and re.search(r'kd-default">默认<', page)
    edit = li.text(f"/account/addresses/{second}/edit")
    assert 'value="龙井路 2 号"' in edit
    changed = li.post(
        f"/account/addresses/{second}/edit", {**HOME, "name": "韩梅梅", "street": "龙井路 8 号"}
    )
    assert changed.status_code == 303
    assert book(shop, "li@buyers.cn")[0] == ("韩梅梅", "龙井路 8 号", True)  # still the default
    # The checkout offers the book, the default chosen first.
    li.add_to_cart("LJ", 1)
    checkout = li.text("/checkout")
    chosen = re.search(r'value="(\d+)" checked', checkout)
    assert chosen is not None and int(chosen.group(1)) == second
    assert 'id="manage-addresses"' in checkout
    # Deleting the default makes the newest left the default.
    assert li.post(f"/account/addresses/{second}/delete").status_code == 303
    assert book(shop, "li@buyers.cn") == [("李雷", "文三路 1 号", True)]


def test_another_buyer_s_address_is_404_and_stays_as_it_was(shop: Flask) -> None:
    li = signed_in(shop, "li@buyers.cn")
    li.post("/account/addresses", {**HOME, "street": "文三路 1 号"})
    theirs = ids(shop, "li@buyers.cn")["文三路 1 号"]
    han = signed_in(shop, "han@buyers.cn")
    assert han.get(f"/account/addresses/{theirs}/edit").status_code == 404
    for action, form in (
        ("edit", {**HOME, "street": "改掉"}),
        ("default", {}),
        ("delete", {}),
    ):
        assert han.post(f"/account/addresses/{theirs}/{action}", form).status_code == 404, action
    assert book(shop, "li@buyers.cn") == [("李雷", "文三路 1 号", True)]
    assert "文三路" not in han.text("/account/addresses")


def test_a_bad_address_is_refused_beside_its_field_and_nothing_is_saved(shop: Flask) -> None:
    li = signed_in(shop, "li@buyers.cn")
    refused = li.post("/account/addresses", {**HOME, "phone": "12", "street": ""})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert 'data-error="phone"' in page and 'data-error="street"' in page
    assert 'value="李雷"' in page  # what was typed is kept
    li.post("/account/addresses", {**HOME, "street": "文三路 1 号"})
    mine = ids(shop, "li@buyers.cn")["文三路 1 号"]
    bad_edit = li.post(f"/account/addresses/{mine}/edit", {**HOME, "name": "", "street": "x"})
    assert bad_edit.status_code == 422 and 'data-error="name"' in bad_edit.get_data(True)
    assert book(shop, "li@buyers.cn") == [("李雷", "文三路 1 号", True)]
    # Without the session's token nothing changes.
    for path, form in (
        (f"/account/addresses/{mine}/delete", {}),
        (f"/account/addresses/{mine}/default", {}),
        (f"/account/addresses/{mine}/edit", {**HOME, "street": "改掉"}),
        ("/account/addresses", {**HOME, "street": "x"}),
    ):
        assert li.post(path, form, token=False).status_code == 400, path
    with shop.app_context():
        assert len(get_state().session.scalars(select(Address)).all()) == 1


def test_a_guest_is_sent_to_log_in(shop: Flask) -> None:
    guest = ShopClient(shop)
    for answer in (guest.get("/account/addresses"), guest.post("/account/addresses", HOME)):
        assert answer.status_code == 302 and "/shop/account/login" in answer.headers["Location"]


def test_a_full_address_book_refuses_another_but_the_checkout_still_places_the_order(
    shop: Flask,
) -> None:
    with shop.app_context():
        li = customers.find_by_login("li@buyers.cn")
        for n in range(customers.MAX_ADDRESSES):
            customers.add_address(li.id, **HOME, street=f"文三路 {n} 号")
    client = signed_in(shop, "li@buyers.cn")
    refused = client.post("/account/addresses", {**HOME, "street": "第 21 个"})
    assert refused.status_code == 422
    assert "收货地址已满（最多 20 个），请先删除一个。" in refused.get_data(as_text=True)
    # A new address typed at checkout with "save" ticked: the order is placed, unsaved.
    client.add_to_cart("LJ", 1)
    placed = client.checkout(address_id="", street="龙井路 9 号")
    assert placed.status_code == 302 and "/pay" in placed.headers["Location"]
    streets = [street for _, street, _ in book(shop, "li@buyers.cn")]
    assert len(streets) == 20 and "龙井路 9 号" not in streets and "第 21 个" not in streets
