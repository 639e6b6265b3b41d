"""The direct read path of the shop's busiest pages (koudai_flask/read_path.py).

Its rows must be exactly what SQLAlchemy's execution gives, on both backends; anything that
watches the engine's statements must still see them; a driver error must surface as
SQLAlchemy's. And the product page, which now reads its SKUs' special prices in its one
statement, must pick the price checkout charges.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError

from koudai_flask.blueprints.shop import catalog_reads
from koudai_flask.extension import get_state
from koudai_flask.models import LimitedPrice, Sku
from koudai_flask.models.base import utcnow
from koudai_flask.read_path import compile_read, read_rows
from koudai_flask.services import catalog, inventory, orders
from tests.shop_client import ShopClient


def add_special(sku_code: str, price: int, *, hours: float = 3, active: bool = True) -> None:
    session = get_state().session
    now = utcnow()
    session.add(
        LimitedPrice(
            sku_id=inventory.get_sku(session, sku_code).id,
            name=f"{price} off",
            price=price,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=hours),
            active=active,
        )
    )
    session.commit()


@pytest.fixture
def tea(app: Any) -> Any:
    catalog.create_product(
        title="Green tea",
        slug="green-tea",
        options=["size"],
        skus=[
            {"code": "TEA-S", "price": 5000, "attributes": {"size": "S"}, "stock": 4},
            {"code": "TEA-L", "price": 9000, "attributes": {"size": "L"}, "stock": 0},
        ],
        images=["tea/1.jpg", "tea/2.jpg"],
    )
    return app


def test_direct_rows_equal_sqlalchemy_s_rows_with_times_and_flags_converted(tea):
    add_special("TEA-L", 7000)
    statement = catalog_reads._product_statement("main")
    params = {"slug": "green-tea", "now": utcnow()}
    connection = get_state().read_connection()
    assert compile_read(statement, connection.dialect) is not None  # the direct path is taken
    direct = read_rows(connection, statement, params)
    through_sqlalchemy = [tuple(row) for row in connection.execute(statement, params)]
    assert direct == through_sqlalchemy
    assert len(direct) == 4  # 2 SKUs x 2 images
    ends_at = [row[-2] for row in direct if row[-2] is not None]
    assert len(ends_at) == 2 and all(isinstance(t, datetime) and t.tzinfo for t in ends_at)
    active = {row[catalog_reads._SKU_ID_AT + 4] for row in direct}
    assert active == {True}  # a boolean, also on SQLite (stored as 1)


def test_a_statement_listener_sees_the_page_s_statement(tea):
    engine = get_state().get_engine()
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        row = catalog_reads.product("green-tea", "main")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert row is not None and [s.code for s in row.skus] == ["TEA-S", "TEA-L"]
    assert len(seen) == 1 and "koudai_product" in seen[0]


def test_a_driver_error_surfaces_as_sqlalchemy_s_and_the_next_read_works(tea):
    connection = get_state().read_connection()
    missing = select(text("id")).select_from(text("koudai_no_such_table"))
    with pytest.raises(DBAPIError):
        read_rows(connection, missing, {})
    assert catalog_reads.category("no-such-category") is None
    assert catalog_reads.product("green-tea", "main") is not None


def test_the_product_page_shows_the_lowest_running_special_price(tea):
    add_special("TEA-S", 4500)
    add_special("TEA-S", 4000)  # the lowest wins
    add_special("TEA-S", 3000, active=False)  # switched off
    add_special("TEA-S", 2000, hours=-0.5)  # over
    row = catalog_reads.product("green-tea", "main")
    assert row is not None
    specials = {s.code: s.special for s in row.skus}
    assert specials["TEA-L"] is None
    assert specials["TEA-S"] is not None and specials["TEA-S"].price == 4000
    assert len(row.images) == 2 and [s.available_here for s in row.skus] == [4, 0]
    page = ShopClient(tea).text("/products/green-tea?lang=en")
    struck = '<del class="kd-was">¥50.00</del> <span class="kd-price kd-special">¥40.00</span>'
    assert struck in page
    assert 'id="limited-price"' in page
    # Checkout charges what the page shows.
    order = orders.place(channel="web", lines=[{"sku": "TEA-S", "quantity": 1}], marketing=True)
    assert order.subtotal == 4000


def test_a_page_without_special_prices_has_no_banner(tea):
    page = ShopClient(tea).text("/products/green-tea?lang=en")
    assert 'id="limited-price"' not in page
    assert "kd-was" not in page
    session = get_state().session
    assert session.scalar(select(Sku.price).where(Sku.code == "TEA-S")) == 5000
