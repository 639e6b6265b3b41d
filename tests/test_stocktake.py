"""Stocktake by scanner (盘点), over the back office's pages on SQLite and PostgreSQL.

A scan finds the SKU (its code, or a barcode two products may share), the count sets its
on-hand figure as a ``count`` movement, audited; a count that is not a number, below what
open orders hold, or made while the book moved is refused in Chinese and changes nothing.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Sku, StockLevel, StockMovement
from koudai_flask.services import catalog, inventory, orders
from tests.test_admin import build, login
from tests.test_refusals_said import said


def text(response: Any) -> str:
    page = response.get_data(as_text=True)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def ledger(app: Flask, code: str) -> tuple[int, int, int, int]:
    """(on hand, reserved, sum of on-hand movements, count movements) of ``code``."""
    with app.app_context():
        session = get_state().session
        sku_id = session.scalar(select(Sku.id).where(Sku.code == code))
        level = session.scalars(select(StockLevel).where(StockLevel.sku_id == sku_id)).one()
        moved = session.scalar(
            select(func.coalesce(func.sum(StockMovement.on_hand_delta), 0)).where(
                StockMovement.sku_id == sku_id
            )
        )
        counts = session.scalar(
            select(func.count()).where(
                StockMovement.sku_id == sku_id, StockMovement.reason == "count"
            )
        )
        return level.on_hand, level.reserved, int(moved), int(counts)


def count(client: Any, code: str, counted: str, seen: int | None = None) -> Any:
    form = {"csrf_token": client.csrf, "code": code, "counted": counted}
    if seen is not None:
        form["seen"] = str(seen)
    return client.post("/shop-admin/stocktake", data=form, follow_redirects=True)


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, dict[str, str]]:
    app, numbers = build(make_app, database_url)  # KET: 50 on hand, 4 held by orders
    with app.app_context():
        for title, code in (("Mug", "MUG-R"), ("Mug gift box", "MUG-BOX")):
            catalog.create_product(
                title=title,
                skus=[{"code": code, "price": 2500, "stock": 9, "barcode": "6901234567892"}],
            )
    return app, numbers


def test_a_scan_finds_the_sku_and_its_count_is_booked(shop):
    app, _ = shop
    client = login(app, "warehouse")
    page = client.get("/shop-admin/stocktake?scan=KET")
    assert page.status_code == 200
    assert re.search(r'<dd id="on-hand">50</dd>', page.get_data(True))
    assert re.search(r'name="counted"[^>]*autofocus', page.get_data(True))
    done = count(client, "KET", "47", seen=50)
    assert done.request.path == "/shop-admin/stocktake"  # back to scan the next
    assert "KET：50 → 47（-3）。请扫描下一个商品。" in said(done)
    assert ledger(app, "KET") == (47, 4, 47, 1)
    with app.app_context():
        entry = (
            get_state()
            .session.scalars(select(AuditEntry).where(AuditEntry.action == "stock.count"))
            .one()
        )
        assert (entry.object_id, entry.before["on_hand"], entry.after["on_hand"]) == ("KET", 50, 47)
    # The same count again (a double tap) books nothing more.
    count(client, "KET", "47", seen=47)
    assert ledger(app, "KET") == (47, 4, 47, 1)


def test_a_barcode_two_products_share_asks_which(shop):
    app, _ = shop
    client = login(app, "warehouse")
    page = client.get("/shop-admin/stocktake?scan=6901234567892")
    choices = re.findall(r'href="/shop-admin/stocktake\?scan=([\w-]+)"', page.get_data(True))
    assert choices == ["MUG-BOX", "MUG-R"]
    unknown = client.get("/shop-admin/stocktake?scan=0000")
    assert unknown.status_code == 404 and "没有编码或条码为 0000 的商品。" in text(unknown)


@pytest.mark.parametrize(
    ("counted", "seen", "words"),
    [
        ("五十", 50, "请填写实盘数量（整数）。"),
        ("3", 50, "KET 有 4 件被未完成的订单占用，实盘数量不能少于此数。请先发货或取消这些订单。"),
        ("49", 52, "您清点期间 KET 的账面库存从 52 变为 50（有订单发货或入库）：请重新清点。"),
    ],
)
def test_a_count_that_cannot_be_is_refused_and_changes_nothing(shop, counted, seen, words):
    app, _ = shop
    client = login(app, "warehouse")
    refused = count(client, "KET", counted, seen=seen)
    assert refused.request.args["scan"] == "KET"  # the same SKU, to count again
    assert words in said(refused), said(refused)
    assert ledger(app, "KET") == (50, 4, 50, 0)


def test_the_book_moving_between_scan_and_count_is_caught(shop):
    """The page showed 50; a unit went out meanwhile; the counter's 50 is stale."""
    app, numbers = shop
    client = login(app, "warehouse")
    with app.app_context():
        orders.ship(numbers["web"], carrier="shunfeng", tracking_number="SF77")
        assert inventory.available("KET") == 46
    refused = count(client, "KET", "50", seen=50)
    assert "从 50 变为 49" in " ".join(said(refused))
    assert ledger(app, "KET")[0] == 49 and ledger(app, "KET")[3] == 0


def test_only_who_adjusts_stock_takes_stock(shop):
    app, _ = shop
    agent = login(app, "customer_service")  # orders, not stock
    assert agent.get("/shop-admin/stocktake").status_code == 403
    assert count(agent, "KET", "1", seen=50).status_code == 403
    no_token = login(app, "warehouse").post(
        "/shop-admin/stocktake", data={"code": "KET", "counted": "1"}
    )
    assert no_token.status_code == 400
    assert ledger(app, "KET") == (50, 4, 50, 0)


def test_shelf_labels_carry_what_the_stocktake_scan_finds(shop):
    """A label's barcode, read by an independent decoder, finds its SKU on the stocktake
    page: its own barcode when it has one, else its code."""
    from tests.test_barcodes import read

    app, _ = shop
    client = login(app, "warehouse")
    page = client.get("/shop-admin/stock/labels?code=MUG-R&code=KET&code=GONE&copies=2")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    labels = re.findall(r'<div class="kd-label" data-sku="([\w-]+)">', body)
    assert labels == ["MUG-R", "MUG-R", "KET", "KET"]  # as ticked; an unknown code left out
    assert "共 4 张标签。" in text(page)
    drawn = re.findall(r"<svg class=\"kd-barcode\".*?</svg>", body)
    read_back = [read(svg) for svg in drawn[::2]]
    assert read_back == [[("6901234567892", "Code128")], [("KET", "Code128")]]
    # Scanned at the shelf: the shared barcode asks which of its two items; the code finds KET.
    shared = client.get("/shop-admin/stocktake?scan=6901234567892").get_data(as_text=True)
    assert re.findall(r'href="/shop-admin/stocktake\?scan=([\w-]+)"', shared) == [
        "MUG-BOX",
        "MUG-R",
    ]
    own = client.get("/shop-admin/stocktake?scan=KET").get_data(as_text=True)
    assert '<section id="counting" data-sku="KET">' in own


def test_labels_need_a_ticked_item_and_a_sensible_number_of_copies(shop):
    app, _ = shop
    client = login(app, "warehouse")
    for query in ("copies=1", "code=KET&copies=0", "code=KET&copies=51", "code=KET&copies=二"):
        refused = client.get(f"/shop-admin/stock/labels?{query}", follow_redirects=True)
        assert refused.request.path == "/shop-admin/stock"
        assert "请勾选要打印标签的商品，每个商品 1 到 50 张。" in said(refused)
    assert (
        login(app, "customer_service").get("/shop-admin/stock/labels?code=KET").status_code == 403
    )
