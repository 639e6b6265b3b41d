"""Every API endpoint × a key with its scope and a key without it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from koudai_flask.blueprints.api import SCOPES
from koudai_flask.extension import get_state
from koudai_flask.models import OrderLine
from koudai_flask.services import (
    identities,
    merges,
    orders,
    reviews,
    segments,
    shipping_templates,
    staff,
    tags,
    theme,
)
from tests.api_support import ALL_SCOPES, API, OWNER, make_key, seed_shop

SHIPPING_TEMPLATE = {
    "name": "快递",
    "basis": "piece",
    "first": 1,
    "first_fee": 800,
    "additional": 1,
    "additional_fee": 200,
}
# (view, method, path, body, status with the scope). {ext} / {paid} / {asked} (refunding)
# are order numbers.
CASES: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
    ("products_list", "GET", "/products", None, 200),
    (
        "product_create",
        "POST",
        "/products",
        {"title": "Tea", "skus": [{"code": "TEA-1", "price": 800, "stock": 3}]},
        201,
    ),
    ("product_read", "GET", "/products/1", None, 200),
    ("skus_list", "GET", "/skus", None, 200),
    ("sku_read", "GET", "/skus/SHIRT-W", None, 200),
    ("sku_update", "PATCH", "/skus/SHIRT-W", {"price": 9900}, 200),
    ("stock_list", "GET", "/stock", None, 200),
    ("stock_read", "GET", "/stock/SHIRT-W", None, 200),
    ("best_sellers_report", "GET", "/reports/best-sellers", None, 200),
    ("stock_adjust", "POST", "/stock/SHIRT-W/adjustments", {"delta": 2}, 201),
    ("stock_count", "POST", "/stock/SHIRT-W/counts", {"quantity": 30}, 201),
    ("orders_list", "GET", "/orders", None, 200),
    (
        "order_create",
        "POST",
        "/orders",
        {"channel": "ext", "external_id": "ext-2", "lines": [{"sku": "SHIRT-B", "quantity": 1}]},
        201,
    ),
    ("order_read", "GET", "/orders/{ext}", None, 200),
    ("order_pay", "POST", "/orders/{ext}/payments", {"amount": 12900, "transaction_id": "T9"}, 201),
    (
        "order_ship",
        "POST",
        "/orders/{paid}/shipments",
        {"carrier": "shunfeng", "tracking_number": "SF100200300"},
        201,
    ),
    ("order_cancel", "POST", "/orders/{ext}/cancel", {"reason": "asked"}, 200),
    (
        "order_address",
        "PUT",
        "/orders/{paid}/address",
        {"name": "王芳", "phone": "13700137000", "street": "文二路 9 号"},
        200,
    ),
    ("order_memo_put", "PUT", "/orders/{paid}/memo", {"memo": "送礼, 不要发票", "flag": 1}, 200),
    ("order_slip", "POST", "/orders/{paid}/slip", None, 200),
    ("order_refund", "POST", "/orders/{paid}/refunds", {"amount": 100}, 201),
    (
        "order_decline_refund",
        "POST",
        "/orders/{asked}/refund-request/decline",
        {"reason": "in transit"},
        200,
    ),
    (
        "order_agree_return",
        "POST",
        "/orders/{returning}/refund-request/agree-return",
        None,
        200,
    ),
    ("shipping_templates", "GET", "/shipping-templates", None, 200),
    ("shipping_template_create", "POST", "/shipping-templates", SHIPPING_TEMPLATE, 201),
    ("shipping_template_read", "GET", "/shipping-templates/1", None, 200),
    (
        "shipping_template_replace",
        "PUT",
        "/shipping-templates/1",
        {**SHIPPING_TEMPLATE, "first_fee": 900},
        200,
    ),
    ("shipping_template_delete", "DELETE", "/shipping-templates/1", None, 204),
    (
        "product_shipping_template",
        "PUT",
        "/products/1/shipping-template",
        {"shipping_template": None},
        200,
    ),
    (
        "shipping_quote",
        "POST",
        "/shipping/quote",
        {"lines": [{"sku": "SHIRT-W", "quantity": 2}], "province": "浙江省"},
        200,
    ),
    ("channels_list", "GET", "/channels", None, 200),
    ("channel_read", "GET", "/channels/ext", None, 200),
    ("customers_list", "GET", "/customers", None, 200),
    ("customer_create", "POST", "/customers", {"name": "New buyer"}, 201),
    ("customer_read", "GET", "/customers/1", None, 200),
    ("customer_update", "PATCH", "/customers/1", {"name": "Renamed"}, 200),
    ("customer_tag_add", "POST", "/customers/1/tags", {"tag": "vip"}, 200),
    ("customer_tag_remove", "DELETE", "/customers/1/tags/vip", None, 200),
    ("customer_notes", "GET", "/customers/1/notes", None, 200),
    ("customer_note_add", "POST", "/customers/1/notes", {"body": "Called back"}, 201),
    ("customer_merges", "GET", "/customers/1/merges", None, 200),
    ("customer_merge", "POST", "/customers/1/merges", {"source_id": 2}, 201),
    ("customer_merge_split", "POST", "/customers/1/merges/1/split", None, 200),
    ("tags_list", "GET", "/tags", None, 200),
    ("tag_create", "POST", "/tags", {"name": "big", "rule": "total_spent >= 100"}, 201),
    ("tag_delete", "DELETE", "/tags/1", None, 204),
    ("segments_list", "GET", "/segments", None, 200),
    ("segment_create", "POST", "/segments", {"name": "Buyers", "min_orders": 1}, 201),
    ("segment_read", "GET", "/segments/1", None, 200),
    ("segment_replace", "PUT", "/segments/1", {"name": "All", "min_orders": 0}, 200),
    ("segment_delete", "DELETE", "/segments/1", None, 204),
    ("segment_members", "GET", "/segments/1/members", None, 200),
    ("segment_export", "GET", "/segments/1/export.csv", None, 200),
    ("reviews_list", "GET", "/reviews", None, 200),
    ("review_read", "GET", "/reviews/1", None, 200),
    ("review_reply_api", "PUT", "/reviews/1/reply", {"reply": "谢谢惠顾"}, 200),
    ("review_status_api", "PUT", "/reviews/1/status", {"status": "hidden"}, 200),
]
PUBLIC = {"root", "openapi_json", "docs"}
# Scopes a view needs besides its declared one (a segment: customers.edit or marketing.manage).
EXTRA_SCOPES = {
    "segment_create": ["marketing.manage"],
    "segment_replace": ["marketing.manage"],
    "segment_delete": ["marketing.manage"],
}


def build(make_app: Any, url: str) -> tuple[Flask, dict[str, str]]:
    app = make_app(url)
    numbers = seed_shop(app)
    with app.app_context():
        orders.mark_paid(numbers["ext-b"], amount=12900, transaction_id="T-B", provider="api:ext-b")
        identities.link_identity("taobao_nick", "buyer-1", name="Buyer")  # customer 1
        tags.add_tag(1, "regular")  # tag 1
        identities.link_identity("phone", "13900000002", name="Second")  # customer 2
        third = identities.link_identity("phone", "13900000003", name="Third")
        merges.merge(OWNER, third, 1)  # merge 1, of customer 3 into customer 1
        segments.save(OWNER, {"min_orders": "0"}, name="Everyone")  # segment 1
        asked = orders.place(
            channel="ext-b",
            lines=[{"sku": "SHIRT-B", "quantity": 1, "unit_price": 13900}],
            external_id="ext-b-2",
        ).number
        orders.mark_paid(asked, amount=13900, transaction_id="T-C", provider="api:ext-b")
        orders.request_refund(asked, reason="too big")
        returning = orders.place(
            channel="ext-b",
            lines=[{"sku": "SHIRT-B", "quantity": 1, "unit_price": 13900}],
            external_id="ext-b-3",
        ).number
        orders.mark_paid(returning, amount=13900, transaction_id="T-D", provider="api:ext-b")
        orders.ship(returning, carrier="shunfeng", tracking_number="SF100200399")
        orders.request_refund(returning, reason="too big", returning=True)
        theme.update(return_address={"name": "售后", "phone": "0571-88886666", "address": "杭州"})
        shipping_templates.save_template(OWNER, None, {**SHIPPING_TEMPLATE, "name": "平邮"})  # 1
        reviewed = orders.place(
            channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}], customer=1
        )
        orders.mark_paid(
            reviewed.number, amount=reviewed.total, transaction_id="T-R", provider="offline"
        )
        orders.ship(reviewed.number, carrier="shunfeng", tracking_number="SF100200400")
        orders.deliver(reviewed.number)
        line_id = get_state().session.scalar(
            select(OrderLine.id).where(OrderLine.order_id == reviewed.id)
        )
        reviews.write(1, reviewed.number, line_id, 2, "偏小")  # review 1
    return app, {
        "ext": numbers["ext"],
        "paid": numbers["ext-b"],
        "asked": asked,
        "returning": returning,
    }


def test_every_endpoint_declares_a_scope_and_has_a_case(make_app, database_url):
    app = make_app(database_url)
    views = {
        rule.endpoint.split(".", 1)[1]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("koudai_api.")
    }
    assert views - PUBLIC == set(SCOPES)
    assert {case[0] for case in CASES} == set(SCOPES)
    assert all(scope is None or scope in staff.PERMISSIONS for scope in SCOPES.values())


@pytest.mark.parametrize(
    ("view", "method", "path", "body", "status"), CASES, ids=[c[0] for c in CASES]
)
def test_a_key_with_the_scope_is_let_through(
    make_app, sqlite_file, view, method, path, body, status
):
    app, numbers = build(make_app, sqlite_file)
    scope = SCOPES[view]
    headers = make_key(app, [scope, *EXTRA_SCOPES.get(view, [])] if scope else ["audit.view"])
    response = app.test_client().open(
        API + path.format(**numbers), method=method, json=body, headers=headers
    )
    assert response.status_code == status, response.get_json()


@pytest.mark.parametrize(
    ("view", "method", "path", "body", "status"), CASES, ids=[c[0] for c in CASES]
)
def test_a_key_without_the_scope_is_refused_and_changes_nothing(
    make_app, sqlite_file, view, method, path, body, status
):
    scope = SCOPES[view]
    if scope is None:
        pytest.skip("readable with any valid key (covered by the test above with audit.view)")
    app, numbers = build(make_app, sqlite_file)
    headers = make_key(app, [s for s in ALL_SCOPES if s != scope])
    before = audit_and_ledger(app)
    response = app.test_client().open(
        API + path.format(**numbers), method=method, json=body, headers=headers
    )
    assert response.status_code == 403
    assert response.get_json() == {
        "code": "PermissionDenied",
        "message": f"this API key lacks the scope {scope!r}",
        "errors": {},
    }
    assert audit_and_ledger(app) == before


def test_a_key_never_does_more_than_its_owner_may_at_the_time(make_app, sqlite_file):
    app, numbers = build(make_app, sqlite_file)
    headers = make_key(app, ["orders.view", "orders.ship"])
    with app.app_context():
        staff.grant(OWNER, "viewer")  # demoted: orders.view only
    client = app.test_client()
    assert client.get(f"{API}/orders/{numbers['ext']}", headers=headers).status_code == 200
    response = client.post(
        f"{API}/orders/{numbers['paid']}/shipments",
        json={"carrier": "shunfeng", "tracking_number": "SF100200300"},
        headers=headers,
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "PermissionDenied"


def test_a_channel_limited_key_sees_only_its_channels(make_app, sqlite_file):
    app, numbers = build(make_app, sqlite_file)
    headers = make_key(app, ["orders.view", "stock.adjust", "channels.view"], channels=["ext"])
    client = app.test_client()
    listed = client.get(f"{API}/orders", headers=headers).get_json()
    assert [o["number"] for o in listed["items"]] == [numbers["ext"]]
    assert client.get(f"{API}/orders/{numbers['paid']}", headers=headers).status_code == 404
    stock = client.get(f"{API}/stock", headers=headers).get_json()
    assert [level["sku"] for level in stock["items"]] == ["SHIRT-W"]  # the SKU linked to ext
    assert client.get(f"{API}/stock/SHIRT-B", headers=headers).status_code == 404
    refused = client.post(f"{API}/stock/SHIRT-B/adjustments", json={"delta": 1}, headers=headers)
    assert refused.status_code == 404
    channels = client.get(f"{API}/channels", headers=headers).get_json()
    assert [c["name"] for c in channels["items"]] == ["ext"]


def audit_and_ledger(app: Flask) -> tuple[int, int, int, int]:
    from sqlalchemy import func, select

    from koudai_flask.models import AuditEntry, Order, Product, StockMovement
    from koudai_flask.services.transaction import current_session

    with app.app_context():
        session = current_session()
        return (
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            session.scalar(select(func.count()).select_from(StockMovement)) or 0,
            session.scalar(select(func.count()).select_from(Order)) or 0,
            session.scalar(select(func.count()).select_from(Product)) or 0,
        )


@pytest.fixture
def sqlite_file(tmp_path: Any, sqlite_template: Any) -> str:
    from tests.helpers import fresh_sqlite_url

    return fresh_sqlite_url(sqlite_template, tmp_path, "api.db")
