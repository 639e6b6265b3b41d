"""A buyer's favourites (收藏): kept and taken off from the product page, listed on their own
page, counted on the back office's product list, brought along by a merge; refused for a
guest, a forged post, a product not on sale and past the limit, with nothing written; on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import Customer, Favourite, Product
from koudai_flask.services import catalog, customers, favourites, merges
from tests.shop_client import ShopClient
from tests.test_admin import build, login


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, dict[str, Any]]:
    app, _ = build(make_app, database_url)
    with app.app_context():
        catalog.create_product(title="Teapot", skus=[{"code": "POT", "price": 4500, "stock": 3}])
        catalog.create_product(
            title="Cups",
            skus=[
                {"code": "CUP-S", "price": 1200, "stock": 9},
                {"code": "CUP-L", "price": 1500, "stock": 9},
            ],
        )
        session = get_state().session
        slugs = {p.title: (p.id, p.slug) for p in session.scalars(select(Product))}
        buyer = customers.find_by_login("web@buyers.cn").id
    return app, {"slugs": slugs, "buyer": buyer}


def kept_rows(app: Flask) -> list[tuple[int, int]]:
    with app.app_context():
        return sorted(
            get_state().session.execute(select(Favourite.customer_id, Favourite.product_id)).all()
        )


def signed_in(app: Flask, login_name: str = "web") -> ShopClient:
    client = ShopClient(app)
    client.get("/account/login")
    client.post("/account/login", {"login": f"{login_name}@buyers.cn", "password": "buyer-pass-1"})
    return client


def test_a_buyer_keeps_a_product_from_its_page_sees_it_listed_and_takes_it_off(shop):
    app, data = shop
    pot_id, pot = data["slugs"]["Teapot"]
    cups_id, cups = data["slugs"]["Cups"]
    buyer = signed_in(app)
    page = buyer.text(f"/products/{pot}")
    assert 'id="favourite-button" aria-pressed="false"' in page
    kept = buyer.post("/favourites", {"product": pot})
    assert kept.status_code == 303 and kept.headers["Location"].endswith(f"/products/{pot}")
    page = buyer.text(f"/products/{pot}")
    assert "已加入收藏。" in page  # said once, after the post
    assert 'aria-pressed="true"' in page and "☆ 加入收藏" not in page.replace("</span> ", " ")
    assert "已收藏" in buyer.text(f"/products/{pot}")
    assert buyer.post("/favourites", {"product": pot}).status_code == 303  # again: no second
    buyer.post("/favourites", {"product": cups})
    assert kept_rows(app) == sorted([(data["buyer"], pot_id), (data["buyer"], cups_id)])
    listing = buyer.get("/account/favourites")
    assert listing.headers["Cache-Control"] == "private, no-store"
    text = listing.get_data(as_text=True)
    assert text.index("Cups") < text.index("Teapot")  # newest first
    assert "¥12.00" in text and "¥45.00" in text
    # From the product's page: back there; from the list: back to the list.
    off = buyer.post(f"/favourites/{pot_id}/delete", {"back": "product"})
    assert off.status_code == 303 and off.headers["Location"].endswith(f"/products/{pot}")
    off = buyer.post(f"/favourites/{cups_id}/delete")
    assert off.headers["Location"].endswith("/account/favourites")
    assert kept_rows(app) == []
    assert buyer.post(f"/favourites/{cups_id}/delete").status_code == 404  # not kept now
    assert "还没有收藏" in buyer.text("/account/favourites")


def test_an_archived_product_stays_listed_as_no_longer_sold_and_cannot_be_kept(shop):
    app, data = shop
    pot_id, pot = data["slugs"]["Teapot"]
    cups_id, cups = data["slugs"]["Cups"]
    buyer = signed_in(app)
    buyer.post("/favourites", {"product": pot})
    with app.app_context():
        catalog.archive_product(pot_id)
    text = buyer.text("/account/favourites")
    assert 'data-on-sale="false"' in text and "已下架" in text
    assert f'href="/shop/products/{pot}"' not in text
    before = kept_rows(app)
    assert buyer.post("/favourites", {"product": "no-such-thing"}).status_code == 404
    with app.app_context(), pytest.raises(NotFound):
        favourites.add(data["buyer"], pot)  # archived: not on sale
    assert kept_rows(app) == before
    with app.app_context():
        assert favourites.add(data["buyer"], cups) is True
        rows = favourites.for_customer(data["buyer"])
        assert [(r.product_id, r.on_sale, r.price) for r in rows] == [
            (cups_id, True, 1200),
            (pot_id, False, 4500),
        ]


def test_a_guest_is_sent_to_log_in_and_a_forged_post_changes_nothing(shop):
    app, data = shop
    _, pot = data["slugs"]["Teapot"]
    guest = ShopClient(app)
    page = guest.text(f"/products/{pot}")
    assert 'id="favourite-button"' in page
    asked = guest.post("/favourites", {"product": pot})
    assert asked.status_code == 302 and "/account/login" in asked.headers["Location"]
    assert guest.get("/account/favourites").status_code == 302
    buyer = signed_in(app)
    assert buyer.post("/favourites", {"product": pot}, token=False).status_code == 400
    assert kept_rows(app) == []
    buyer.post("/favourites", {"product": pot})
    before = kept_rows(app)
    pot_id = data["slugs"]["Teapot"][0]
    assert buyer.post(f"/favourites/{pot_id}/delete", token=False).status_code == 400
    assert kept_rows(app) == before != []


def test_one_buyer_cannot_take_off_anothers_and_the_limit_refuses_one_more(shop, monkeypatch):
    app, data = shop
    pot_id, pot = data["slugs"]["Teapot"]
    _, cups = data["slugs"]["Cups"]
    signed_in(app).post("/favourites", {"product": pot})
    other = signed_in(app, "tb-a")
    assert other.post(f"/favourites/{pot_id}/delete").status_code == 404
    assert kept_rows(app) == [(data["buyer"], pot_id)]
    monkeypatch.setattr(favourites, "MAX_FAVOURITES", 1)
    before = kept_rows(app)
    refused = signed_in(app).post("/favourites", {"product": cups}, follow_redirects=True)
    assert "您已收藏 1 件商品" in refused.get_data(as_text=True)
    with app.app_context(), pytest.raises(ValidationError) as error:
        favourites.add(data["buyer"], cups)
    assert error.value.reason == "favourite_limit"
    assert kept_rows(app) == before


def test_the_product_list_counts_keepers_and_a_merge_brings_favourites_along(shop):
    app, data = shop
    pot_id, pot = data["slugs"]["Teapot"]
    cups_id, cups = data["slugs"]["Cups"]
    with app.app_context():
        other = customers.find_by_login("tb-a@buyers.cn").id
        favourites.add(data["buyer"], pot)
        favourites.add(other, pot)
        favourites.add(other, cups)
        assert favourites.counts([pot_id, cups_id, 999]) == {pot_id: 2, cups_id: 1}
    owner = login(app, "owner")
    page = owner.get("/shop-admin/products").get_data(as_text=True)
    assert f'data-favourites="{pot_id}:2"' in page and f'data-favourites="{cups_id}:1"' in page
    with app.app_context():
        merges.merge("staff:owner@shop.cn", other, data["buyer"])
        session = get_state().session
        # The teapot both kept stays with the source; the cups move to the one that stands.
        assert sorted(
            session.execute(
                select(Favourite.product_id).where(Favourite.customer_id == data["buyer"])
            ).scalars()
        ) == sorted([pot_id, cups_id])
        assert session.scalar(select(func.count()).select_from(Favourite)) == 3
        assert session.get(Customer, other) is not None
