"""The catalog service: categories, products and their SKUs, and what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import Category, Product, Sku, StockLevel, StockMovement
from koudai_flask.services import catalog, inventory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.services_only


def catalog_rows(app: Any) -> dict[str, Any]:
    """Everything a catalog call could write, for 'changed nothing' assertions."""
    session = get_state(app).session
    session.expire_all()
    found = {
        "categories": session.execute(select(Category.slug, Category.parent_id)).all(),
        "products": session.execute(
            select(Product.slug, Product.title, Product.status, Product.category_id)
        ).all(),
        "skus": session.execute(select(Sku.code, Sku.price, Sku.product_id)).all(),
        "levels": session.scalar(select(func.count()).select_from(StockLevel)),
        "movements": session.scalar(select(func.count()).select_from(StockMovement)),
    }
    session.rollback()
    return found


REFUSED: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "two SKUs with one code",
        lambda: catalog.create_product(
            title="Twins",
            skus=[{"code": "TWIN", "price": 100}, {"code": "TWIN", "price": 200}],
        ),
        ValidationError,
        "SKU codes must be unique within a product",
    ),
    (
        "a slug taken",
        lambda: catalog.create_product(
            title="Another shirt", slug="oxford-shirt", skus=[{"code": "NEW-1", "price": 100}]
        ),
        ValidationError,
        "product slug 'oxford-shirt' already exists",
    ),
    (
        "a SKU without a value for an option",
        lambda: catalog.create_product(
            title="Socks",
            options=["color", "size"],
            skus=[{"code": "SOCK-1", "price": 900, "attributes": {"color": "red"}, "stock": 4}],
        ),
        ValidationError,
        "SKU 'SOCK-1' lacks a value for size",
    ),
    (
        "an unknown category",
        lambda: catalog.create_product(
            title="Lost", category="nowhere", skus=[{"code": "LOST-1", "price": 100}]
        ),
        NotFound,
        "unknown category 'nowhere'",
    ),
    (
        "a SKU code taken, added later",
        lambda: catalog.add_sku(
            "oxford-shirt", {"code": "SHIRT-W", "price": 100, "attributes": {"color": "x"}}
        ),
        ValidationError,
        "SKU code 'SHIRT-W' already exists",
    ),
    (
        "a SKU added to an unknown product",
        lambda: catalog.add_sku("no-such-product", {"code": "NEW-2", "price": 100}),
        NotFound,
        "unknown product 'no-such-product'",
    ),
    (
        "a SKU added without its option value",
        lambda: catalog.add_sku("oxford-shirt", {"code": "SHIRT-R", "price": 100, "stock": 3}),
        ValidationError,
        "SKU 'SHIRT-R' lacks a value for color",
    ),
    (
        "a category slug taken",
        lambda: catalog.create_category("Again", "shirts"),
        ValidationError,
        "category 'shirts' already exists",
    ),
    (
        "a category under an unknown parent",
        lambda: catalog.create_category("Orphans", "orphans", parent="nowhere"),
        NotFound,
        "unknown category 'nowhere'",
    ),
    (
        "an update of an unknown product",
        lambda: catalog.update_product(99999, title="Ghost"),
        NotFound,
        "unknown product 99999",
    ),
    (
        "an empty title",
        lambda: catalog.update_product("oxford-shirt", title=""),
        ValidationError,
        "invalid product: title: Shorter than minimum length 1.",
    ),
    (
        "a negative price",
        lambda: catalog.update_sku("SHIRT-W", price=-1),
        ValidationError,
        "invalid SKU: price: Must be greater than or equal to 0",
    ),
    (
        "an update of an unknown SKU",
        lambda: catalog.update_sku("NOPE", price=100),
        NotFound,
        "unknown SKU 'NOPE'",
    ),
    (
        "an archive of an unknown product",
        lambda: catalog.archive_product("no-such-product"),
        NotFound,
        "unknown product 'no-such-product'",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_bad_catalog_calls_are_refused_and_write_nothing(app, shirt, call, error, message):
    catalog.create_category("Shirts", "shirts")
    before = catalog_rows(app)
    with pytest.raises(error, match=message):
        call()
    assert catalog_rows(app) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sort": "cheapest"}, "sort must be one of newest, price_asc, price_desc, sales"),
        ({"page": 0}, "page starts at 1"),
        ({"per_page": 0}, "per_page must be at least 1"),
    ],
)
def test_a_bad_listing_request_is_refused(app, shirt, arguments, message):
    with pytest.raises(ValidationError, match=message):
        catalog.listing(**arguments)


def test_one_title_twice_gets_two_slugs(app):
    first = catalog.create_product(title="Green Tea", skus=[{"code": "TEA-1", "price": 100}])
    second = catalog.create_product(title="Green Tea", skus=[{"code": "TEA-2", "price": 100}])
    assert first.slug == "green-tea"
    assert second.slug.startswith("green-tea-") and second.slug != first.slug


def test_categories_skus_and_archiving(app, shirt):
    catalog.create_category("Clothes", "clothes")
    catalog.create_category("Shirts", "shirts", parent="clothes")
    catalog.update_product("oxford-shirt", category="shirts", featured=True)
    assert [p.slug for p in catalog.active_products(category="shirts")] == ["oxford-shirt"]
    assert [p.slug for p in catalog.active_products(featured=True)] == ["oxford-shirt"]
    assert catalog.active_products(category="clothes") == []  # listed under its own category
    cards, total = catalog.listing(category="clothes")  # the shop's listing takes subcategories
    assert ([c.slug for c in cards], total) == (["oxford-shirt"], 1)

    sku = catalog.add_sku(
        "oxford-shirt",
        {"code": "SHIRT-R", "price": 14900, "attributes": {"color": "red"}, "stock": 3},
    )
    assert (sku.code, inventory.available("SHIRT-R")) == ("SHIRT-R", 3)
    catalog.update_sku("SHIRT-R", price=13900)
    assert get_state(app).session.scalar(select(Sku.price).where(Sku.code == "SHIRT-R")) == 13900

    catalog.archive_product("oxford-shirt")
    assert catalog.active_products(category="shirts") == []
    assert catalog.listing(category="clothes") == ([], 0)
    assert inventory.available("SHIRT-R") == 3  # archiving keeps the stock and its history
    assert_ledger_consistent(get_state(app).session)
