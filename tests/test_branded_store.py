"""The branded-store example: its layout wraps every shop page, its product page wins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from examples.branded_store.app import create_app
from koudai_flask.extension import get_state
from koudai_flask.schema import create_all
from koudai_flask.services import catalog


@pytest.fixture
def store(database_url: str, tmp_path) -> Iterator[Flask]:
    app = create_app({"KOUDAI_DATABASE_URI": database_url, "TESTING": True})
    app.instance_path = str(tmp_path)
    with app.app_context():
        create_all(get_state().get_engine())
        catalog.create_product(
            title="狮峰龙井 Shifeng Longjing",
            slug="longjing",
            description="Picked before Qingming on Shifeng hill.",
            skus=[{"code": "LJ-50", "price": 16800, "stock": 20}],
        )
    yield app
    get_state(app).get_engine().dispose()


def test_every_shop_page_wears_the_brand(store):
    client = store.test_client()
    for path in ("/tea/", "/tea/products", "/tea/cart", "/tea/products/longjing", "/tea/nope"):
        page = client.get(path).get_data(as_text=True)
        assert 'class="koudai mingqian"' in page, path
        assert "明前采摘 · 当季新茶" in page, path
        assert "--kd-accent: #3b6b35" in page, path


def test_the_brand_product_page_replaces_ours_and_still_sells(store):
    client = store.test_client()
    page = client.get("/tea/products/longjing").get_data(as_text=True)
    assert '<blockquote class="mingqian-story">Picked before Qingming' in page
    assert 'class="kd-gallery"' not in page  # koudai's own product page is not used
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/tea/cart/add", data={"csrf_token": token, "sku": "LJ-50", "quantity": "1"}
    )
    assert response.status_code == 302
    assert 'id="total">¥168.00' in client.get("/tea/cart").get_data(as_text=True)
