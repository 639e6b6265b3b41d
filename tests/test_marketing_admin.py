"""Marketing in the back office: permission, CSRF, validation, batches and their CSV, audit."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.blueprints.admin import VIEW_PERMISSIONS
from koudai_flask.errors import PermissionDenied
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Coupon, CouponBatch, LimitedPrice, Promotion
from koudai_flask.services import catalog, staff
from koudai_flask.services.marketing import coupon_admin
from koudai_flask.services.marketing.coupon_admin import CODE_ALPHABET, CouponRules
from tests.helpers import fresh_sqlite_url

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PASSWORD = "correct-horse-battery"
COUPON_FORM = {
    "code": "spring-10",
    "name": "春季",
    "kind": "fixed",
    "value": "10",
    "min_spend": "99.00",
    "starts_at": "2026-03-01T00:00",
    "ends_at": "2026-04-01T00:00",
    "total_limit": "100",
    "per_customer_limit": "1",
}


@pytest.fixture
def admin_app(make_app: Any, tmp_path: Any, sqlite_template: Any) -> Flask:
    app = make_app(fresh_sqlite_url(sqlite_template, tmp_path, "marketing.db"))
    with app.app_context():
        for who, role, channels in (
            ("boss", "owner", None),
            ("promo", "marketing", None),
            ("viewer", "viewer", None),
            ("tb-promo", "marketing", ["web-less"]),
        ):
            if channels:
                from koudai_flask.services import channels as channel_service

                channel_service.create("taobao", "web-less", settings={})
            staff.grant(
                f"staff:{who}", role, channels=channels, email=f"{who}@shop.cn", password=PASSWORD
            )
        catalog.create_product(title="Tea", skus=[{"code": "TEA", "price": 5000, "stock": 5}])
    return app


def login(app: Flask, who: str) -> Any:
    client = app.test_client()
    token = TOKEN.search(client.get("/shop-admin/login").get_data(as_text=True)).group(1)
    response = client.post(
        "/shop-admin/login",
        data={"email": f"{who}@shop.cn", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    client.csrf = token  # type: ignore[attr-defined]
    return client


def post(client: Any, path: str, data: dict[str, str]) -> Any:
    return client.post(f"/shop-admin{path}", data={**data, "csrf_token": client.csrf})


def rows(app: Flask, model: Any) -> list[Any]:
    with app.app_context():
        session = get_state().session
        return list(session.scalars(select(model).order_by(model.id)))


def test_every_marketing_view_needs_marketing_manage(admin_app):
    names = [
        n
        for n in VIEW_PERMISSIONS
        if n.startswith(("coupon_", "batch_", "promotion_", "limited_price_", "marketing_"))
    ]
    assert len(names) == 14
    assert {VIEW_PERMISSIONS[n] for n in names} == {"marketing.manage"}


def test_staff_without_the_permission_get_403_and_change_nothing(admin_app):
    client = login(admin_app, "viewer")
    assert client.get("/shop-admin/marketing").status_code == 403
    assert post(client, "/marketing/coupons/new", COUPON_FORM).status_code == 403
    # A marketing member scoped to other channels may not change the own shop's marketing.
    scoped = login(admin_app, "tb-promo")
    assert post(scoped, "/marketing/coupons/new", COUPON_FORM).status_code == 403
    assert rows(admin_app, Coupon) == []
    anonymous = admin_app.test_client().get("/shop-admin/marketing")
    assert anonymous.status_code == 302 and "/shop-admin/login" in anonymous.location


def test_a_post_without_csrf_is_refused(admin_app):
    client = login(admin_app, "promo")
    response = client.post("/shop-admin/marketing/coupons/new", data=COUPON_FORM)
    assert response.status_code == 400
    assert rows(admin_app, Coupon) == []


def test_create_edit_and_deactivate_a_coupon(admin_app):
    client = login(admin_app, "promo")
    assert client.get("/shop-admin/marketing").status_code == 200
    response = post(client, "/marketing/coupons/new", COUPON_FORM)
    assert response.status_code == 303
    [coupon] = rows(admin_app, Coupon)
    assert (coupon.code, coupon.kind, coupon.value, coupon.min_spend) == (
        "SPRING-10",
        "fixed",
        1000,
        9900,
    )
    assert (coupon.total_limit, coupon.per_customer_limit) == (100, 1)
    # Shanghai midnight is 16:00 UTC the day before.
    assert coupon.starts_at.isoformat() == "2026-02-28T16:00:00+00:00"
    page = client.get(f"/shop-admin/marketing/coupons/{coupon.id}").get_data(as_text=True)
    assert 'value="2026-03-01T00:00"' in page and 'value="99.00"' in page

    changed = {**COUPON_FORM, "kind": "percent", "value": "15", "max_discount": "30"}
    assert post(client, f"/marketing/coupons/{coupon.id}", changed).status_code == 303
    [coupon] = rows(admin_app, Coupon)
    assert (coupon.kind, coupon.value, coupon.max_discount) == ("percent", 15, 3000)

    assert (
        post(client, f"/marketing/coupons/{coupon.id}/active", {"active": "0"}).status_code == 303
    )
    assert rows(admin_app, Coupon)[0].active is False
    with admin_app.app_context():
        actions = (
            get_state()
            .session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_type == "coupon")
                .order_by(AuditEntry.id)
            )
            .all()
        )
    assert actions == [
        "marketing.coupon_create",
        "marketing.coupon_update",
        "marketing.coupon_active",
    ]


@pytest.mark.parametrize(
    ("change", "field_message"),
    [
        ({"code": "a!"}, "4 to 40"),
        ({"value": "ten"}, "yuan"),
        ({"kind": "percent", "value": "100"}, "1 to 99"),
        ({"ends_at": "2026-02-01T00:00"}, "after the start"),
        ({"starts_at": "tomorrow"}, "year-month-day"),
        ({"total_limit": "-1"}, "whole number"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_coupon_input_is_422_and_changes_nothing(admin_app, change, field_message):
    client = login(admin_app, "promo")
    response = post(client, "/marketing/coupons/new?lang=en", {**COUPON_FORM, **change})
    assert response.status_code == 422
    assert field_message in response.get_data(as_text=True)
    assert rows(admin_app, Coupon) == []


def test_a_duplicate_code_is_refused(admin_app):
    client = login(admin_app, "promo")
    assert post(client, "/marketing/coupons/new", COUPON_FORM).status_code == 303
    assert post(client, "/marketing/coupons/new", COUPON_FORM).status_code == 422
    assert len(rows(admin_app, Coupon)) == 1


def test_a_batch_of_unique_unambiguous_codes_and_its_csv(admin_app):
    client = login(admin_app, "promo")
    form = {**COUPON_FORM, "name": "传单", "size": "300", "prefix": "fly", "total_limit": ""}
    response = post(client, "/marketing/batches/new", form)
    assert response.status_code == 303
    [batch] = rows(admin_app, CouponBatch)
    codes = rows(admin_app, Coupon)
    assert (batch.size, len(codes), len({c.code for c in codes})) == (300, 300, 300)
    for coupon in codes:
        assert coupon.code.startswith("FLY") and len(coupon.code) == 15
        assert set(coupon.code[3:]) <= set(CODE_ALPHABET)
        assert (coupon.total_limit, coupon.batch_id, coupon.name) == (1, batch.id, "传单")
    assert not set("01OIL") & set(CODE_ALPHABET)

    page = client.get(f"/shop-admin/marketing/batches/{batch.id}?lang=en").get_data(as_text=True)
    assert "<h1>Batch 传单</h1>" in page and "300 codes, 0 used, 300 active." in page
    index = client.get("/shop-admin/marketing").get_data(as_text=True)
    assert f'data-batch="{batch.id}"' in index and "FLY" not in index  # codes only in the CSV
    download = client.get(f"/shop-admin/marketing/batches/{batch.id}/codes.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert table[0] == ["code", "used", "limit", "active"]
    assert sorted(row[0] for row in table[1:]) == sorted(c.code for c in codes)
    assert {tuple(row[1:]) for row in table[1:]} == {("0", "1", "yes")}

    # New rules reach every code; deactivating the batch deactivates them all.
    edited = {**form, "value": "20", "total_limit": "2"}
    assert post(client, f"/marketing/batches/{batch.id}", edited).status_code == 303
    assert {(c.value, c.total_limit) for c in rows(admin_app, Coupon)} == {(2000, 2)}
    assert post(client, f"/marketing/batches/{batch.id}/active", {"active": "0"}).status_code == 303
    assert {c.active for c in rows(admin_app, Coupon)} == {False}


def test_a_batch_size_out_of_range_is_refused(admin_app):
    client = login(admin_app, "promo")
    response = post(client, "/marketing/batches/new", {**COUPON_FORM, "size": "10001"})
    assert response.status_code == 422
    assert rows(admin_app, CouponBatch) == []


def test_full_reduction_tiers_are_validated(admin_app):
    client = login(admin_app, "promo")
    good = {
        "name": "满减",
        "tier-0-threshold": "399",
        "tier-0-off": "50",
        "tier-1-threshold": "199",
        "tier-1-off": "20",
    }
    assert post(client, "/marketing/promotions/new", good).status_code == 303
    [promotion] = rows(admin_app, Promotion)
    page = client.get(f"/shop-admin/marketing/promotions/{promotion.id}").get_data(as_text=True)
    assert "<h1>满减</h1>" in page and 'value="399.00"' in page
    assert promotion.tiers == [{"threshold": 19900, "off": 2000}, {"threshold": 39900, "off": 5000}]
    for bad in (
        {"name": "x", "tier-0-threshold": "100", "tier-0-off": "100"},  # off >= threshold
        {
            "name": "x",
            "tier-0-threshold": "100",
            "tier-0-off": "30",
            "tier-1-threshold": "200",
            "tier-1-off": "20",
        },  # more spend, less off
        {"name": "x", "tier-0-threshold": "100"},  # half a tier
        {"name": "x"},  # no tier
    ):
        assert post(client, "/marketing/promotions/new", bad).status_code == 422
    assert len(rows(admin_app, Promotion)) == 1
    assert (
        post(client, f"/marketing/promotions/{promotion.id}/active", {"active": "0"}).status_code
        == 303
    )
    assert rows(admin_app, Promotion)[0].active is False


def test_limited_prices_are_validated(admin_app):
    client = login(admin_app, "promo")
    good = {
        "sku": "TEA",
        "price": "39.90",
        "name": "限时",
        "starts_at": "2026-01-01T10:00",
        "ends_at": "2026-01-02T10:00",
    }
    assert post(client, "/marketing/prices/new", good).status_code == 303
    [row] = rows(admin_app, LimitedPrice)
    assert (row.price, row.name) == (3990, "限时")
    assert post(client, "/marketing/prices/new", {**good, "price": "50"}).status_code == 422
    assert post(client, "/marketing/prices/new", {**good, "sku": "NOPE"}).status_code == 422
    assert post(client, "/marketing/prices/new", {**good, "ends_at": ""}).status_code == 422
    assert len(rows(admin_app, LimitedPrice)) == 1
    assert post(client, f"/marketing/prices/{row.id}", {**good, "price": "29"}).status_code == 303
    assert rows(admin_app, LimitedPrice)[0].price == 2900
    page = client.get("/shop-admin/marketing?lang=en").get_data(as_text=True)
    assert "<del>¥50.00</del> ¥29.00" in page
    assert client.get("/shop-admin/marketing/prices/999").status_code == 404


def test_services_check_the_permission_themselves(admin_app):
    rules = CouponRules(name="x", kind="fixed", value=100)
    with admin_app.app_context():
        with pytest.raises(PermissionDenied):
            coupon_admin.create_coupon("staff:viewer", "VIEWER1", rules)
        with pytest.raises(PermissionDenied):
            coupon_admin.create_batch("staff:tb-promo", "b", 5, rules)
        assert get_state().session.scalar(select(func.count()).select_from(Coupon)) == 0
