"""Shipping templates kept through the REST API: created, read, replaced and deleted as the
back office keeps them, given to products, refused with nothing changed, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Product, ShippingTemplate
from koudai_flask.services import staff
from tests.api_support import API, make_key
from tests.test_freight import BY_PIECE, BY_WEIGHT, OWNER, tea_shop

KEY_OWNER = "staff:api@shop.cn"
# ¥6 the first piece, ¥2 each further; ¥15 / ¥5 to 海南; nothing to 香港 and 澳门.
ISLAND = {
    "name": "海岛件",
    "basis": "piece",
    "first": 1,
    "first_fee": 600,
    "additional": 1,
    "additional_fee": 200,
    "free_over": 20000,
    "areas": [
        {
            "provinces": ["海南省"],
            "first": 1,
            "first_fee": 1500,
            "additional": 1,
            "additional_fee": 500,
        }
    ],
    "excluded": ["香港", "澳门特别行政区"],
}


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    return tea_shop(make_app, database_url)


def api(shop: Flask, *scopes: str) -> tuple[FlaskClient, dict[str, str]]:
    with shop.app_context():
        staff.grant(KEY_OWNER, "admin", granted_by=OWNER)
    return shop.test_client(), make_key(shop, list(scopes), owner=KEY_OWNER)


def product_id(shop: Flask, title: str) -> int:
    with shop.app_context():
        found = get_state().session.scalar(select(Product.id).where(Product.title == title))
        assert found is not None
        return found


def snapshot(shop: Flask) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """Every template's columns, every product's template and the audit's length."""
    with shop.app_context():
        session = get_state().session
        templates = [
            (t.id, t.name, t.basis, t.first_fee, t.additional_fee, t.free_over, t.areas, t.excluded)
            for t in session.scalars(select(ShippingTemplate).order_by(ShippingTemplate.id))
        ]
        products = session.execute(
            select(Product.title, Product.shipping_template_id).order_by(Product.id)
        ).all()
        audited = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        return templates, [tuple(row) for row in products], audited


def test_a_template_made_given_to_a_product_replaced_and_deleted_through_the_api(
    shop: Flask,
) -> None:
    client, headers = api(shop, "catalog.edit")
    created = client.post(f"{API}/shipping-templates", json=ISLAND, headers=headers)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    # Provinces written as an address writes them are kept as the short names fees go by.
    assert body["areas"] == [{**ISLAND["areas"][0], "provinces": ["海南"]}]
    assert body["excluded"] == ["香港", "澳门"] and body["free_over"] == 20000
    path = f"{API}/shipping-templates/{body['id']}"
    assert client.get(path, headers=headers).get_json() == body
    cloth = product_id(shop, "茶巾 Cloth")
    given = client.put(
        f"{API}/products/{cloth}/shipping-template",
        json={"shipping_template": "海岛件"},
        headers=headers,
    )
    assert given.status_code == 200 and given.get_json()["shipping_template"] == "海岛件"

    def quote(province: str) -> dict[str, Any]:
        lines = [{"sku": "CLOTH", "quantity": 3}]  # ¥150 of goods, under the ¥200 free over
        answer = client.post(
            f"{API}/shipping/quote", json={"lines": lines, "province": province}, headers=headers
        )
        assert answer.status_code == 200
        return answer.get_json()

    assert quote("海南省")["fee"] == 1500 + 2 * 500
    assert quote("浙江省")["fee"] == 600 + 2 * 200
    assert quote("香港")["undeliverable"] == ["茶巾 Cloth"]
    # PUT replaces every field: the area not sent is gone.
    replaced = client.put(path, json={**ISLAND, "areas": [], "free_over": None}, headers=headers)
    assert replaced.status_code == 200
    assert replaced.get_json()["areas"] == [] and replaced.get_json()["free_over"] is None
    assert quote("海南省")["fee"] == 600 + 2 * 200
    # In use, it cannot be deleted; given up by its product, it can.
    before = snapshot(shop)
    refused = client.delete(path, headers=headers)
    assert refused.status_code == 422 and refused.get_json()["reason"] == "template_in_use"
    assert refused.get_json()["detail"] == {"name": "海岛件", "count": 1}
    assert snapshot(shop) == before
    flat = client.put(
        f"{API}/products/{cloth}/shipping-template",
        json={"shipping_template": None},
        headers=headers,
    )
    assert flat.get_json()["shipping_template"] is None
    assert quote("海南省")["fee"] == 800  # the shop's flat fee
    assert client.delete(path, headers=headers).status_code == 204
    gone = client.get(path, headers=headers)
    assert gone.status_code == 404 and gone.get_json()["reason"] == "unknown_template"
    with shop.app_context():
        audited = get_state().session.execute(
            select(AuditEntry.actor, AuditEntry.action)
            .where(AuditEntry.object_type.in_(["shipping_template", "product"]))
            .where(AuditEntry.object_id.in_([str(body["id"]), str(cloth)]))
            .where(AuditEntry.action != "catalog.create_product")
            .order_by(AuditEntry.id)
        )
        actor = f"staff:{KEY_OWNER}"  # the key's owner, as every key's change is audited
        assert [tuple(row) for row in audited] == [
            (actor, "catalog.save_shipping_template"),
            (actor, "catalog.set_shipping_template"),
            (actor, "catalog.save_shipping_template"),
            (actor, "catalog.set_shipping_template"),
            (actor, "catalog.delete_shipping_template"),
        ]


def test_bad_templates_are_refused_naming_the_field_and_nothing_changes(shop: Flask) -> None:
    client, headers = api(shop, "catalog.edit")
    pot = product_id(shop, "茶壶 Pot")
    with shop.app_context():
        weight = get_state().session.scalar(
            select(ShippingTemplate.id).where(ShippingTemplate.name == BY_WEIGHT["name"])
        )
    nameless = {key: value for key, value in ISLAND.items() if key != "name"}
    refusals = [
        ("POST", "/shipping-templates", {**ISLAND, "name": BY_PIECE["name"]}, 422, "name"),
        ("POST", "/shipping-templates", {**ISLAND, "name": " "}, 422, "name"),
        ("POST", "/shipping-templates", nameless, 422, "name"),
        ("POST", "/shipping-templates", {**ISLAND, "basis": "volume"}, 422, "basis"),
        ("POST", "/shipping-templates", {**ISLAND, "first_fee": -1}, 422, "first_fee"),
        ("POST", "/shipping-templates", {**ISLAND, "first": 0}, 422, "first"),
        ("POST", "/shipping-templates", {**ISLAND, "first_fee": "6"}, 422, "first_fee"),
        ("POST", "/shipping-templates", {**ISLAND, "excluded": ["火星"]}, 422, "provinces"),
        ("POST", "/shipping-templates", {**ISLAND, "excluded": ["海南"]}, 422, "areas"),
        ("PUT", f"/shipping-templates/{weight}", {**ISLAND, "name": BY_PIECE["name"]}, 422,
         "name"),
        ("PUT", "/shipping-templates/999", ISLAND, 404, None),
        ("DELETE", "/shipping-templates/999", None, 404, None),
        ("PUT", f"/products/{pot}/shipping-template", {"shipping_template": "无此模板"}, 422,
         "shipping_template"),
        ("PUT", f"/products/{pot}/shipping-template", {}, 422, "shipping_template"),
        ("PUT", "/products/999/shipping-template", {"shipping_template": None}, 404, None),
    ]  # fmt: skip
    before = snapshot(shop)
    for method, path, body, status, field in refusals:
        answer = client.open(f"{API}{path}", method=method, json=body, headers=headers)
        assert answer.status_code == status, (method, path, body, answer.get_json())
        if field is not None:
            assert field in answer.get_json()["errors"], (path, body, answer.get_json())
    assert snapshot(shop) == before


def test_keeping_templates_needs_catalog_edit_and_reading_them_any_key(shop: Flask) -> None:
    client, headers = api(shop, "orders.view")
    pot = product_id(shop, "茶壶 Pot")
    before = snapshot(shop)
    read = client.get(f"{API}/shipping-templates/{before[0][0][0]}", headers=headers)
    assert read.status_code == 200 and read.get_json()["name"] == BY_PIECE["name"]
    for method, path, body in (
        ("POST", "/shipping-templates", ISLAND),
        ("PUT", f"/shipping-templates/{before[0][0][0]}", ISLAND),
        ("DELETE", f"/shipping-templates/{before[0][1][0]}", None),
        ("PUT", f"/products/{pot}/shipping-template", {"shipping_template": None}),
    ):
        answer = client.open(f"{API}{path}", method=method, json=body, headers=headers)
        assert answer.status_code == 403, (method, path, answer.get_json())
    assert snapshot(shop) == before
