"""A shop for the REST API tests: staff, a product, an external channel, orders, keys."""

from __future__ import annotations

from typing import Any

from flask import Flask

from koudai_flask.services import api_keys, catalog, channels, orders, staff

API = "/shop-api/v1"
OWNER = "staff:owner@shop.cn"
ALL_SCOPES = list(staff.PERMISSIONS)


def seed_shop(app: Flask) -> dict[str, Any]:
    """An owner, two SKUs (10 each), channels ``ext`` and ``ext-b`` with one order each."""
    with app.app_context():
        staff.grant(OWNER, "owner", email="owner@shop.cn", password="correct-horse-battery")
        catalog.create_product(
            title="Oxford shirt",
            options=["color"],
            skus=[
                {"code": "SHIRT-W", "price": 12900, "attributes": {"color": "white"}, "stock": 10},
                {"code": "SHIRT-B", "price": 13900, "attributes": {"color": "blue"}, "stock": 10},
            ],
        )
        numbers = {}
        for name in ("ext", "ext-b"):
            channels.create("erp", name, settings={})
            order = orders.place(
                channel=name,
                lines=[{"sku": "SHIRT-W", "quantity": 1, "unit_price": 12900}],
                external_id=f"{name}-1",
                actor="test",
            )
            numbers[name] = order.number
        channels.link("ext", "SHIRT-W", external_item_id="1")
        return numbers


def make_key(
    app: Flask, scopes: list[str], *, channels: list[str] | None = None, owner: str = OWNER
) -> dict[str, str]:
    with app.app_context():
        created = api_keys.create(owner, "test key", scopes, channels=channels)
    return {"Authorization": f"Bearer {created.token}"}
