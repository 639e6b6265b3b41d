"""The back office's catalog, stock, staff, audit and message pages."""

from __future__ import annotations

import html
import io
import os
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.blueprints.shop import media_folder
from koudai_flask.errors import ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import (
    AuditEntry,
    Category,
    MessageTemplate,
    Product,
    ProductImage,
    Role,
    Sku,
    StaffMember,
    StockLevel,
    StockMovement,
)
from koudai_flask.services import inventory
from koudai_flask.services.catalog_admin import yuan_to_fen
from koudai_flask.storage import read_image, sniff_image
from tests.test_admin import PASSWORD, TOKEN, build, login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
    b'<rect width="4" height="4"/></svg>'
)


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, dict[str, str]]:
    """The back office of tests/test_admin.py's shop, on SQLite and on PostgreSQL."""
    return build(make_app, database_url)


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        return get_state().session.scalar(select(func.count()).select_from(model).where(*where))


def rows_of(page: str) -> list[dict[str, str]]:
    """The SKU rows of the product form, as the browser would post them back."""
    fields = dict(re.findall(r'name="(row-\d+-\w+)" value="([^"]*)"', page))
    rows = []
    for i in range(int(re.search(r'name="rows" value="(\d+)"', page).group(1))):
        rows.append(
            {
                part: html.unescape(fields.get(f"row-{i}-{part}", ""))
                for part in ("key", "code", "price", "barcode", "weight", "stock")
            }
        )
    return rows


def product_form(
    client: Any,
    *,
    title: str,
    options: list[tuple[str, str]],
    action: str,
    rows: list[dict[str, str]] | None = None,
    **extra: str,
) -> dict[str, Any]:
    data: dict[str, Any] = {"csrf_token": client.csrf, "title": title, "action": action, **extra}
    for i, (name, values) in enumerate(options):
        data[f"option-{i}-name"], data[f"option-{i}-values"] = name, values
    for i, row in enumerate(rows or []):
        data.update({f"row-{i}-{part}": value for part, value in row.items()})
    data["rows"] = str(len(rows or []))
    return data


# -- permissions -----------------------------------------------------------------------------

PAGES = [
    ("/shop-admin/products", "admin", "warehouse"),
    ("/shop-admin/products/new", "owner", "viewer"),
    ("/shop-admin/products/1", "admin", "marketing"),
    ("/shop-admin/categories", "admin", "customer_service"),
    ("/shop-admin/stock", "warehouse", "marketing"),
    ("/shop-admin/stock/KET", "warehouse", "viewer"),
    ("/shop-admin/staff", "admin", "warehouse"),
    ("/shop-admin/audit", "owner", "marketing"),
    ("/shop-admin/messages", "marketing", "warehouse"),
    ("/shop-admin/messages/paid/sms", "marketing", "customer_service"),
]


def test_each_page_renders_for_its_permission_and_is_403_without(shop):
    app, _ = shop
    clients = {role: login(app, role) for role in {r for _, *roles in PAGES for r in roles}}
    for path, allowed, refused in PAGES:
        assert clients[allowed].get(path).status_code == 200, path
        assert clients[refused].get(path).status_code == 403, path


def test_the_menu_lists_only_what_the_role_may_open(shop):
    app, _ = shop
    page = login(app, "warehouse").get("/shop-admin/").get_data(as_text=True)
    menu = re.search(r'<nav class="kd-menu".*?</nav>', page, re.S).group(0)
    assert 'href="/shop-admin/stock"' in menu
    for path in ("products", "staff", "audit", "messages"):
        assert f'href="/shop-admin/{path}"' not in menu


# -- the SKU matrix --------------------------------------------------------------------------


def test_the_sku_matrix_creates_adds_and_deactivates(shop):
    app, _ = shop
    client = login(app, "admin")
    colours_sizes = [("colour", "红, 蓝"), ("size", "S,M")]
    page = client.post(
        "/shop-admin/products/new",
        data=product_form(
            client, title="T恤", options=colours_sizes, action="generate", prefix="tee"
        ),
    )
    assert page.status_code == 200
    rows = rows_of(page.get_data(as_text=True))
    assert [r["code"] for r in rows] == ["TEE-1-S", "TEE-1-M", "TEE-2-S", "TEE-2-M"]
    for row, price in zip(rows, ["129.00", "129.99", "0.10", "99"], strict=True):
        row["price"] = price
    rows[0]["stock"] = "5"
    saved = client.post(
        "/shop-admin/products/new",
        data=product_form(client, title="T恤", options=colours_sizes, action="save", rows=rows),
    )
    assert saved.status_code == 303
    product_id = int(saved.location.rsplit("/", 1)[1])
    with app.app_context():
        session = get_state().session
        skus = session.scalars(
            select(Sku).where(Sku.product_id == product_id).order_by(Sku.id)
        ).all()
        assert [(s.code, s.price, s.attributes, s.active) for s in skus] == [
            ("TEE-1-S", 12900, {"colour": "红", "size": "S"}, True),
            ("TEE-1-M", 12999, {"colour": "红", "size": "M"}, True),
            ("TEE-2-S", 10, {"colour": "蓝", "size": "S"}, True),
            ("TEE-2-M", 9900, {"colour": "蓝", "size": "M"}, True),
        ]
        assert session.get(Product, product_id).options == ["colour", "size"]
        assert inventory.available("TEE-1-S") == 5
        first_ids = [s.id for s in skus]

    edit = f"/shop-admin/products/{product_id}"
    three_sizes = [("colour", "红, 蓝"), ("size", "S,M,L")]
    page = client.post(
        edit,
        data=product_form(
            client, title="T恤", options=three_sizes, action="generate", default_price="139.00"
        ),
    )
    rows = rows_of(page.get_data(as_text=True))
    assert [(r["code"], r["price"]) for r in rows] == [
        ("TEE-1-S", "129.00"),
        ("TEE-1-M", "129.99"),
        ("TEE-1-L", "139.00"),
        ("TEE-2-S", "0.10"),
        ("TEE-2-M", "99.00"),
        ("TEE-2-L", "139.00"),
    ]
    assert (
        client.post(
            edit,
            data=product_form(client, title="T恤", options=three_sizes, action="save", rows=rows),
        ).status_code
        == 303
    )
    with app.app_context():
        skus = (
            get_state()
            .session.scalars(select(Sku).where(Sku.product_id == product_id).order_by(Sku.id))
            .all()
        )
        assert len(skus) == 6 and [s.id for s in skus[:4]] == first_ids
        assert all(s.active for s in skus)
        assert {s.code: s.price for s in skus}["TEE-2-L"] == 13900

    only_red = [("colour", "红"), ("size", "S,M,L")]
    rows = rows_of(
        client.post(
            edit, data=product_form(client, title="T恤", options=only_red, action="generate")
        ).get_data(as_text=True)
    )
    assert [r["code"] for r in rows] == ["TEE-1-S", "TEE-1-M", "TEE-1-L"]
    assert (
        client.post(
            edit, data=product_form(client, title="T恤", options=only_red, action="save", rows=rows)
        ).status_code
        == 303
    )
    with app.app_context():
        skus = get_state().session.scalars(select(Sku).where(Sku.product_id == product_id)).all()
        assert sorted((s.code, s.active) for s in skus) == [
            ("TEE-1-L", True),
            ("TEE-1-M", True),
            ("TEE-1-S", True),
            ("TEE-2-L", False),
            ("TEE-2-M", False),
            ("TEE-2-S", False),
        ]
        entries = (
            get_state()
            .session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "catalog.save_product")
                .order_by(AuditEntry.id)
            )
            .all()
        )
        assert [e.before is None for e in entries] == [True, False, False]
        assert entries[-1].before["skus"]["TEE-2-S"]["active"] is True
        assert entries[-1].after["skus"]["TEE-2-S"]["active"] is False
        assert entries[-1].actor == "staff:staff:admin@shop.cn"


def test_a_save_with_options_changed_since_generating_asks_to_check_the_rows(shop):
    app, _ = shop
    client = login(app, "admin")
    rows = rows_of(
        client.post(
            "/shop-admin/products/new",
            data=product_form(
                client,
                title="Cup",
                options=[("size", "S")],
                action="generate",
                default_price="5.00",
            ),
        ).get_data(as_text=True)
    )
    response = client.post(
        "/shop-admin/products/new",
        data=product_form(
            client, title="Cup", options=[("size", "S, M")], action="save", rows=rows
        ),
    )
    assert response.status_code == 422
    assert len(rows_of(response.get_data(as_text=True))) == 2
    assert count(app, Product) == 1


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("0.10", 10),
        ("129.99", 12999),
        ("129", 12900),
        ("1.5", 150),
        (" 12.30 ", 1230),
        ("¥8.00", 800),
        ("0", 0),
        ("99999999.99", 9999999999),
    ],
)
def test_yuan_to_fen_is_exact(typed, fen):
    assert yuan_to_fen(typed) == fen


@pytest.mark.parametrize(
    "typed",
    [
        "12.345",
        "abc",
        "-1",
        "1e3",
        "",
        "１２",
        "NaN",
        "0x10",
        "1,299.00",
        "01.00",
        "1.",
        ".5",
        "100000000",
    ],
)
def test_yuan_to_fen_refuses_anything_else(typed):
    with pytest.raises(ValidationError):
        yuan_to_fen(typed)


def test_a_bad_price_writes_nothing(shop):
    app, _ = shop
    client = login(app, "admin")
    options = [("size", "S, M")]
    rows = rows_of(
        client.post(
            "/shop-admin/products/new",
            data=product_form(
                client, title="Cap", options=options, action="generate", prefix="CAP"
            ),
        ).get_data(as_text=True)
    )
    rows[0]["price"], rows[1]["price"] = "12.00", "12.345"
    before = (
        count(app, Product),
        count(app, Sku),
        count(app, AuditEntry),
        count(app, StockMovement),
    )
    response = client.post(
        "/shop-admin/products/new",
        data=product_form(client, title="Cap", options=options, action="save", rows=rows),
    )
    assert response.status_code == 422
    assert 'class="kd-bad"' in response.get_data(as_text=True)
    assert (
        count(app, Product),
        count(app, Sku),
        count(app, AuditEntry),
        count(app, StockMovement),
    ) == before


def test_a_sku_code_taken_by_another_product_writes_nothing(shop):
    app, _ = shop
    client = login(app, "admin")
    rows = [
        {
            "key": '{"size": "S"}',
            "code": "S1",
            "price": "1.00",
            "barcode": "",
            "weight": "0",
            "stock": "3",
        },
        {
            "key": '{"size": "M"}',
            "code": "KET",
            "price": "1.00",
            "barcode": "",
            "weight": "0",
            "stock": "0",
        },
    ]
    response = client.post(
        "/shop-admin/products/new",
        data=product_form(
            client, title="Clash", options=[("size", "S,M")], action="save", rows=rows
        ),
    )
    assert response.status_code == 422
    assert count(app, Product) == 1 and count(app, Sku, Sku.code == "S1") == 0
    # Said in the staff's language (the back office's default is Chinese), the code named.
    assert "SKU 编码 KET 已被其他 SKU 使用。" in response.get_data(as_text=True)


def test_archive_hides_the_product_and_is_audited(shop):
    app, _ = shop
    client = login(app, "admin")
    assert (
        client.post("/shop-admin/products/1/archive", data={"csrf_token": client.csrf}).status_code
        == 303
    )
    with app.app_context():
        assert get_state().session.get(Product, 1).status == "archived"
    assert count(app, AuditEntry, AuditEntry.action == "catalog.archive") == 1
    assert 'id="archived"' in client.get("/shop-admin/products/1").get_data(as_text=True)


def test_categories_list_and_create(shop):
    app, _ = shop
    client = login(app, "admin")
    response = client.post(
        "/shop-admin/categories",
        data={"csrf_token": client.csrf, "name": "茶具", "slug": "tea-sets", "position": "2"},
    )
    assert response.status_code == 303
    assert 'data-slug="tea-sets"' in client.get("/shop-admin/categories").get_data(as_text=True)
    client.post(
        "/shop-admin/categories",
        data={"csrf_token": client.csrf, "name": "Again", "slug": "tea-sets"},
    )
    client.post("/shop-admin/categories", data={"csrf_token": client.csrf, "name": "茶杯"})
    assert count(app, Category) == 1  # a Chinese name alone makes no address: refused
    client.post(
        "/shop-admin/categories",
        data={"csrf_token": client.csrf, "name": "Cups", "parent": "tea-sets"},
    )
    with app.app_context():
        cups = get_state().session.scalar(select(Category).where(Category.slug == "cups"))
        assert cups.parent_id == get_state().session.scalar(
            select(Category.id).where(Category.slug == "tea-sets")
        )
    assert count(app, AuditEntry, AuditEntry.action == "catalog.create_category") == 2


# -- images ----------------------------------------------------------------------------------


def test_image_upload_stores_the_file_and_a_row(shop):
    app, _ = shop
    client = login(app, "admin")
    response = client.post(
        "/shop-admin/products/1/images",
        data={"csrf_token": client.csrf, "image": (io.BytesIO(PNG), "photo.JPG")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    with app.app_context():
        image = get_state().session.scalar(select(ProductImage))
        assert re.fullmatch(r"products/1/[0-9a-f]{16}\.png", image.path)
        with app.test_request_context():
            stored = os.path.join(media_folder(), image.path)
        with open(stored, "rb") as fh:
            assert fh.read() == PNG
    page = client.get("/shop-admin/products/1").get_data(as_text=True)
    assert f'src="/shop/media/{image.path}"' in page
    with client.get(f"/shop/media/{image.path}") as served:
        assert served.data == PNG


def test_a_non_image_is_refused(shop):
    app, _ = shop
    client = login(app, "admin")
    for body, name in (
        (b"<html><script>alert(1)</script></html>", "x.png"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "x.svg"),
        (b"", "empty.png"),
    ):
        response = client.post(
            "/shop-admin/products/1/images",
            data={"csrf_token": client.csrf, "image": (io.BytesIO(body), name)},
            content_type="multipart/form-data",
        )
        assert response.status_code == 303
    assert count(app, ProductImage) == 0
    with app.test_request_context():
        assert not os.path.exists(os.path.join(media_folder(), "products"))


def test_image_sniffing():
    assert sniff_image(PNG) == "png"
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "jpg"
    assert sniff_image(b"GIF89a....") == "gif"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image(SVG) == "svg"
    assert sniff_image(b'<?xml version="1.0"?>\n' + SVG) == "svg"
    for bad in (
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:x()"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><image href="http://evil/x.png"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><style>@import "x.css";</style></svg>',
        b'<!DOCTYPE svg [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/2000/svg"/>',
        b"<html></html>",
        b"MZ\x90\x00",
    ):
        assert sniff_image(bad) is None, bad
    with pytest.raises(ValidationError, match="at most"):
        read_image(io.BytesIO(PNG + bytes(100)), limit=64)


def test_a_host_swaps_the_storage(shop):
    app, _ = shop
    saved: list[str] = []

    class Bucket:
        def save(self, stream: Any, filename: str) -> str:
            saved.append(filename)
            return f"https://cdn.example.com/{filename}"

        def url(self, path: str) -> str:
            return path

    app.extensions["koudai"].storage = Bucket()
    client = login(app, "admin")
    client.post(
        "/shop-admin/products/1/images",
        data={"csrf_token": client.csrf, "image": (io.BytesIO(SVG), "logo.svg")},
        content_type="multipart/form-data",
    )
    assert len(saved) == 1 and saved[0].endswith(".svg")
    page = client.get("/shop-admin/products/1").get_data(as_text=True)
    assert f'src="https://cdn.example.com/{saved[0]}"' in page


# -- stock -----------------------------------------------------------------------------------


def test_a_stock_adjustment_is_one_movement_and_one_audit_entry(shop):
    app, _ = shop
    client = login(app, "warehouse")
    with app.app_context():
        on_hand = inventory.adjust("KET", 1, source="test").on_hand - 1
    movements, entries = count(app, StockMovement), count(app, AuditEntry)
    response = client.post(
        "/shop-admin/stock/KET/adjust",
        data={"csrf_token": client.csrf, "delta": "-3", "reason": "damaged in storage"},
    )
    assert response.status_code == 303
    assert count(app, StockMovement) == movements + 1
    assert count(app, AuditEntry) == entries + 1
    with app.app_context():
        session = get_state().session
        movement = session.scalar(select(StockMovement).order_by(StockMovement.id.desc()))
        assert (movement.on_hand_delta, movement.reason, movement.note, movement.source) == (
            -3,
            "adjustment",
            "damaged in storage",
            "staff:staff:warehouse@shop.cn",
        )
        entry = session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
        assert (entry.action, entry.object_type, entry.object_id) == ("stock.adjust", "sku", "KET")
        assert entry.before["on_hand"] == on_hand + 1
        assert entry.after["on_hand"] == on_hand - 2
    page = client.get("/shop-admin/stock/KET").get_data(as_text=True)
    ledger = re.findall(r'data-movement="(\d+)"', page)
    assert ledger[0] == str(movement.id) and len(ledger) == movements + 1
    assert "damaged in storage" in page


def test_an_adjustment_without_a_reason_or_below_reserved_changes_nothing(shop):
    app, _ = shop
    client = login(app, "warehouse")
    movements, entries = count(app, StockMovement), count(app, AuditEntry)
    for data in (
        {"delta": "5", "reason": " "},
        {"delta": "0", "reason": "x"},
        {"delta": "abc", "reason": "x"},
        {"delta": "-100000", "reason": "x"},
    ):
        response = client.post(
            "/shop-admin/stock/KET/adjust", data={"csrf_token": client.csrf, **data}
        )
        assert response.status_code == 303
    assert (count(app, StockMovement), count(app, AuditEntry)) == (movements, entries)
    with app.app_context():
        on_hand = inventory.available("KET")
    page = client.get("/shop-admin/stock/KET").get_data(as_text=True)
    assert f"KET 库存不足：需要 100000 件，可用 {on_hand} 件。" in page  # said in Chinese
    assert (
        client.post(
            "/shop-admin/stock/NOPE/adjust",
            data={"csrf_token": client.csrf, "delta": "1", "reason": "x"},
        ).status_code
        == 404
    )


def test_the_ledger_is_paginated_newest_first(shop):
    app, _ = shop
    with app.app_context():
        for n in range(35):
            inventory.adjust("KET", 1, source="test", note=f"n{n}")
        ids = (
            get_state()
            .session.scalars(
                select(StockMovement.id)
                .join(Sku)
                .where(Sku.code == "KET")
                .order_by(StockMovement.id.desc())
            )
            .all()
        )
    client = login(app, "warehouse")
    first = re.findall(
        r'data-movement="(\d+)"', client.get("/shop-admin/stock/KET").get_data(as_text=True)
    )
    second = re.findall(
        r'data-movement="(\d+)"', client.get("/shop-admin/stock/KET?page=2").get_data(as_text=True)
    )
    assert [int(i) for i in first + second] == ids


def test_the_low_stock_threshold_is_set_and_listed(shop):
    app, _ = shop
    client = login(app, "warehouse")
    assert 'data-sku="KET"' not in client.get("/shop-admin/stock?low=1").get_data(as_text=True)
    client.post(
        "/shop-admin/stock/KET/threshold", data={"csrf_token": client.csrf, "threshold": "100"}
    )
    with app.app_context():
        assert get_state().session.scalar(select(Sku.low_stock_threshold)) == 100
        entry = get_state().session.scalar(
            select(AuditEntry).where(AuditEntry.action == "stock.threshold")
        )
        assert (entry.before, entry.after) == (
            {"low_stock_threshold": None},
            {"low_stock_threshold": 100},
        )
    assert 'data-sku="KET"' in client.get("/shop-admin/stock?low=1").get_data(as_text=True)
    client.post(
        "/shop-admin/stock/KET/threshold", data={"csrf_token": client.csrf, "threshold": ""}
    )
    with app.app_context():
        assert get_state().session.scalar(select(Sku.low_stock_threshold)) is None


# -- staff -----------------------------------------------------------------------------------


def test_grant_revoke_and_create_a_role_through_the_pages(shop):
    app, _ = shop
    owner = login(app, "owner")
    response = owner.post(
        "/shop-admin/staff/grant",
        data={
            "csrf_token": owner.csrf,
            "email": "Packer@Shop.cn",
            "password": PASSWORD,
            "display_name": "小王",
            "role": "warehouse",
            "channels": ["tb-a"],
        },
    )
    assert response.status_code == 303
    with app.app_context():
        member = get_state().session.scalar(
            select(StaffMember).where(StaffMember.user_id == "staff:packer@shop.cn")
        )
        assert (member.role, member.channels, member.active) == ("warehouse", ["tb-a"], True)
    packer = login(app, "packer")
    assert packer.get("/shop-admin/stock").status_code == 200
    page = owner.get("/shop-admin/staff").get_data(as_text=True)
    assert 'data-user="staff:packer@shop.cn" data-role="warehouse" data-active="yes"' in page

    assert (
        owner.post(
            "/shop-admin/staff/revoke",
            data={"csrf_token": owner.csrf, "user_id": "staff:packer@shop.cn"},
        ).status_code
        == 303
    )
    assert packer.get("/shop-admin/stock").status_code == 302  # no longer staff: to the login
    assert (
        owner.post(
            "/shop-admin/staff/roles",
            data={
                "csrf_token": owner.csrf,
                "name": "packer",
                "rank": "30",
                "permissions": ["orders.view", "orders.ship"],
            },
        ).status_code
        == 303
    )
    with app.app_context():
        role = get_state().session.scalar(select(Role).where(Role.name == "packer"))
        assert (role.rank, role.permissions) == (30, ["orders.ship", "orders.view"])
    actions = [a for a in _actions(app) if a.startswith("staff.")]
    assert actions[-3:] == ["staff.grant", "staff.revoke", "staff.create_role"]


def _actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(get_state().session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (
            "/shop-admin/staff/grant",
            {"email": "boss@shop.cn", "password": PASSWORD, "role": "owner"},
        ),
        ("/shop-admin/staff/grant", {"email": "owner@shop.cn", "role": "viewer"}),
        ("/shop-admin/staff/revoke", {"user_id": "staff:owner@shop.cn"}),
        ("/shop-admin/staff/revoke", {"user_id": "staff:admin@shop.cn"}),
        ("/shop-admin/staff/roles", {"name": "boss", "rank": "90", "permissions": ["orders.view"]}),
    ],
)
def test_a_refused_escalation_is_403_and_changes_nothing(shop, path, data):
    app, _ = shop
    admin = login(app, "admin")
    with app.app_context():
        before = [
            (m.user_id, m.role, m.active)
            for m in get_state().session.scalars(select(StaffMember).order_by(StaffMember.id))
        ]
    entries, roles = count(app, AuditEntry), count(app, Role)
    response = admin.post(path, data={"csrf_token": admin.csrf, **data})
    assert response.status_code == 403
    assert 'class="kd-flash kd-flash-error"' in response.get_data(as_text=True)
    with app.app_context():
        after = [
            (m.user_id, m.role, m.active)
            for m in get_state().session.scalars(select(StaffMember).order_by(StaffMember.id))
        ]
    assert after == before
    assert (count(app, AuditEntry), count(app, Role)) == (entries, roles)


def test_a_scoped_member_grants_only_within_their_channels(shop):
    app, _ = shop
    with app.app_context():
        from koudai_flask.services import staff

        staff.grant(
            "staff:lead@shop.cn",
            "admin",
            channels=["tb-a"],
            email="lead@shop.cn",
            password=PASSWORD,
        )
    lead = login(app, "lead")
    page = lead.get("/shop-admin/staff").get_data(as_text=True)
    assert 'value="tb-a"' in page and 'value="tb-b"' not in page
    refused = lead.post(
        "/shop-admin/staff/grant",
        data={
            "csrf_token": lead.csrf,
            "email": "new@shop.cn",
            "password": PASSWORD,
            "role": "viewer",
        },
    )
    assert refused.status_code == 403
    assert (
        lead.post(
            "/shop-admin/staff/grant",
            data={
                "csrf_token": lead.csrf,
                "email": "new@shop.cn",
                "password": PASSWORD,
                "role": "viewer",
                "channels": "tb-a",
            },
        ).status_code
        == 303
    )


# -- audit -----------------------------------------------------------------------------------


def _entry_ids(client: Any, query: str) -> list[int]:
    page = client.get(f"/shop-admin/audit?{query}").get_data(as_text=True)
    return [int(i) for i in re.findall(r'data-entry="(\d+)"', page)]


def test_audit_filters_return_exactly_the_matching_entries(shop):
    app, _ = shop
    with app.app_context():
        session = get_state().session
        session.add_all(
            [
                AuditEntry(
                    actor="staff:staff:warehouse@shop.cn",
                    action="stock.adjust",
                    object_type="sku",
                    object_id="KET",
                    before={"on_hand": 5},
                    after={"on_hand": 2},
                    created_at=datetime(2026, 1, 1, 15, 59, tzinfo=UTC),
                ),
                AuditEntry(
                    actor="staff:staff:warehouse@shop.cn",
                    action="stock.adjust",
                    object_type="sku",
                    object_id="CUP",
                    before={"on_hand": 1},
                    after={"on_hand": 4},
                    created_at=datetime(2026, 1, 1, 16, 1, tzinfo=UTC),
                ),
                AuditEntry(
                    actor="staff:staff:admin@shop.cn",
                    action="catalog.archive",
                    object_type="product",
                    object_id="1",
                    before={"status": "active"},
                    after={"status": "archived"},
                    created_at=datetime(2026, 1, 3, 2, 0, tzinfo=UTC),
                ),
            ]
        )
        session.commit()
        ids = {(e.action, e.object_id): e.id for e in session.scalars(select(AuditEntry))}
    client = login(app, "owner")
    adjusted = [ids["stock.adjust", "CUP"], ids["stock.adjust", "KET"]]
    assert _entry_ids(client, "action=stock.adjust") == adjusted
    assert _entry_ids(client, "actor=WAREHOUSE") == adjusted
    assert _entry_ids(client, "object_type=sku&object_id=KET") == [ids["stock.adjust", "KET"]]
    # Days are the shop's (Asia/Shanghai): 15:59 UTC is still 1 January there, 16:01 is not.
    assert _entry_ids(client, "from=2026-01-02&to=2026-01-02") == [ids["stock.adjust", "CUP"]]
    assert _entry_ids(client, "to=2026-01-01") == [ids["stock.adjust", "KET"]]
    assert _entry_ids(client, "actor=admin&from=2026-01-01&to=2026-01-31") == [
        ids["catalog.archive", "1"]
    ]
    assert _entry_ids(client, "action=stock.adjust&actor=admin") == []
    page = client.get("/shop-admin/audit?object_id=CUP").get_data(as_text=True)
    assert "<dt>on_hand</dt><dd><del>1</del> → <ins>4</ins></dd>" in page


def test_the_audit_log_is_paginated(shop):
    app, _ = shop
    with app.app_context():
        session = get_state().session
        session.add_all(
            [
                AuditEntry(
                    actor="system",
                    action="x.test",
                    object_type="t",
                    object_id=str(n),
                    before=None,
                    after={"n": n},
                )
                for n in range(60)
            ]
        )
        session.commit()
    client = login(app, "owner")
    first, second = (_entry_ids(client, f"action=x.test&page={p}") for p in (1, 2))
    assert len(first) == 50 and len(second) == 10 and first[0] > first[-1] > second[0]


# -- buyer messages --------------------------------------------------------------------------


def test_marketing_edits_a_message_and_a_broken_one_is_refused(shop):
    app, _ = shop
    client = login(app, "marketing")
    page = client.get("/shop-admin/messages").get_data(as_text=True)
    # Every (event, channel): the eight order events and back in stock, x 3 channels.
    assert page.count("data-template=") == 27
    assert 'data-template="back_in_stock-sms"' in page
    stock = client.get("/shop-admin/messages/back_in_stock/wechat").get_data(as_text=True)
    assert 'id="template-id-setting"' in stock and 'name="wechat_template_id"' not in stock
    assert "<code>{{ product }}</code>" in stock and "order_number" not in stock
    bad = client.post(
        "/shop-admin/messages/paid/sms",
        data={"csrf_token": client.csrf, "body": "【店】{{ no_such_variable }}"},
    )
    assert bad.status_code == 422 and count(app, MessageTemplate) == 0
    good = client.post(
        "/shop-admin/messages/paid/sms",
        data={"csrf_token": client.csrf, "body": "【店】订单{{ order_number }}已付款"},
    )
    assert good.status_code == 303
    with app.app_context():
        row = get_state().session.scalar(select(MessageTemplate))
        assert (row.event, row.channel) == ("paid", "sms")
        assert row.body == "【店】订单{{ order_number }}已付款"
        entry = get_state().session.scalar(
            select(AuditEntry).where(AuditEntry.action == "template.save")
        )
        assert entry.actor == "staff:staff:marketing@shop.cn"
    assert client.get("/shop-admin/messages/paid/fax").status_code == 404


# -- CSRF ------------------------------------------------------------------------------------


def posts() -> list[tuple[str, dict[str, Any]]]:
    """A valid body for every POST of these pages (fresh: an upload is read once)."""
    return [
        (
            "/shop-admin/products/new",
            {
                "title": "X",
                "action": "save",
                "rows": "1",
                "row-0-key": "{}",
                "row-0-code": "X1",
                "row-0-price": "1",
            },
        ),
        (
            "/shop-admin/products/1",
            {
                "title": "Renamed",
                "action": "save",
                "rows": "1",
                "row-0-key": "{}",
                "row-0-code": "KET",
                "row-0-price": "1",
            },
        ),
        ("/shop-admin/products/1/archive", {}),
        ("/shop-admin/products/1/images", {"image": (io.BytesIO(PNG), "a.png")}),
        ("/shop-admin/categories", {"name": "C", "slug": "c"}),
        ("/shop-admin/stock/KET/adjust", {"delta": "1", "reason": "x"}),
        ("/shop-admin/stock/KET/threshold", {"threshold": "9"}),
        ("/shop-admin/staff/grant", {"email": "n@shop.cn", "password": PASSWORD, "role": "viewer"}),
        ("/shop-admin/staff/revoke", {"user_id": "staff:viewer@shop.cn"}),
        ("/shop-admin/staff/roles", {"name": "r", "rank": "5", "permissions": "orders.view"}),
        ("/shop-admin/messages/paid/sms", {"body": "【店】{{ order_number }}"}),
    ]


def _state(app: Flask) -> tuple[Any, ...]:
    with app.app_context():
        session = get_state().session
        models = (
            AuditEntry,
            Product,
            Sku,
            StockMovement,
            StaffMember,
            Role,
            ProductImage,
            Category,
            MessageTemplate,
        )
        counts = tuple(session.scalar(select(func.count()).select_from(m)) for m in models)
        return (
            *counts,
            session.scalar(select(Product.title)),
            session.scalar(select(Product.status)),
            session.scalar(select(Sku.low_stock_threshold)),
            session.scalar(select(func.sum(StockLevel.on_hand))),
            tuple(session.scalars(select(StaffMember.active).order_by(StaffMember.id))),
        )


def test_every_post_without_a_csrf_token_is_refused(shop):
    app, _ = shop
    client = login(app, "owner")
    posted = {path for path, _ in posts()}
    mine = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods
        and rule.endpoint.startswith("koudai_admin.")
        and rule.endpoint.split(".")[-1]
        in {
            "product_new",
            "product_edit",
            "product_archive",
            "product_image_upload",
            "category_create",
            "stock_adjust",
            "stock_threshold",
            "staff_grant",
            "staff_revoke",
            "role_create",
            "message_template_edit",
        }
    }
    assert len(mine) == len(posted)
    before = _state(app)
    for path, data in posts():
        response = client.post(path, data=data, content_type="multipart/form-data")
        assert response.status_code == 400, path
    assert _state(app) == before
    for path, data in posts():  # the same bodies with the token do change things
        entries = count(app, AuditEntry)
        response = client.post(
            path, data={"csrf_token": client.csrf, **data}, content_type="multipart/form-data"
        )
        assert response.status_code == 303, path
        assert count(app, AuditEntry) == entries + 1, path


def test_a_stale_token_is_refused_too(shop):
    app, _ = shop
    client = login(app, "owner")
    other = app.test_client()
    token = TOKEN.search(other.get("/shop-admin/login").get_data(as_text=True)).group(1)
    response = client.post(
        "/shop-admin/stock/KET/adjust", data={"csrf_token": token, "delta": "1", "reason": "x"}
    )
    assert response.status_code == 400
