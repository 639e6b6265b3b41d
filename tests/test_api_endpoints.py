"""The API's shared behaviour: ETags, cursors, errors, its document, mounting it twice."""

from __future__ import annotations

from flask import Flask

from koudai_flask import Koudai
from koudai_flask.blueprints import create_api_blueprint
from koudai_flask.extension import get_state
from koudai_flask.services import orders
from tests.api_support import ALL_SCOPES, API, make_key, seed_shop


def test_a_get_carries_an_etag_and_answers_304_while_it_holds(app):
    seed_shop(app)
    headers = make_key(app, ["orders.view"])
    client = app.test_client()
    first = client.get(f"{API}/products/1", headers=headers)
    etag = first.headers["ETag"]
    same = client.get(f"{API}/products/1", headers={**headers, "If-None-Match": etag})
    assert (same.status_code, same.data) == (304, b"")
    client.patch(
        f"{API}/skus/SHIRT-W", json={"price": 100}, headers=make_key(app, ["catalog.edit"])
    )
    changed = client.get(f"{API}/products/1", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.get_json()["skus"][0]["price"] == 100


def test_orders_come_in_cursor_pages_newest_first(app):
    numbers = seed_shop(app)
    extra = orders.place(
        channel="ext", lines=[{"sku": "SHIRT-B", "quantity": 1}], external_id="ext-9"
    ).number
    headers = make_key(app, ["orders.view"])
    client = app.test_client()
    seen, cursor = [], None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = client.get(f"{API}/orders{query}", headers=headers).get_json()
        seen += [o["number"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [extra, numbers["ext-b"], numbers["ext"]]
    only = client.get(f"{API}/orders?channel=ext&sku=SHIRT-B", headers=headers).get_json()
    assert [o["number"] for o in only["items"]] == [extra]
    bad = client.get(f"{API}/orders?cursor=bm9wZQ", headers=headers)
    assert bad.status_code == 422
    assert bad.get_json()["errors"] == {"cursor": ["not a cursor given by this API"]}


def test_errors_have_one_shape_with_field_details(app):
    seed_shop(app)
    headers = make_key(app, ALL_SCOPES)
    client = app.test_client()
    missing = client.get(f"{API}/orders/KD0", headers=headers)
    assert missing.status_code == 404
    assert missing.get_json() == {
        "code": "NotFound",
        "message": "unknown order 'KD0'",
        "errors": {},
        "reason": "unknown_order",
        "detail": {"number": "KD0"},
    }
    invalid = client.post(
        f"{API}/orders",
        json={"channel": "ext", "external_id": "x", "lines": [{"sku": "SHIRT-W", "quantity": 0}]},
        headers=headers,
    )
    assert invalid.status_code == 422
    assert invalid.get_json()["errors"] == {
        "lines": {
            "0": {
                "quantity": ["Must be greater than or equal to 1 and less than or equal to 9999."]
            }
        }
    }
    huge = client.post(
        f"{API}/products",
        json={"title": "X", "skus": [{"code": "X-1", "price": 2**40}]},
        headers=headers,
    )
    assert huge.status_code == 422 and "skus" in huge.get_json()["errors"]
    nul = client.post(
        f"{API}/products",
        json={"title": "X\x00", "skus": [{"code": "X-1", "price": 1}]},
        headers=headers,
    )
    assert nul.status_code == 422
    assert nul.get_json()["errors"] == {"title": ["may not contain NUL characters"]}
    web = client.post(
        f"{API}/orders",
        json={"channel": "web", "external_id": "w", "lines": [{"sku": "SHIRT-W", "quantity": 1}]},
        headers=headers,
    )
    assert web.status_code == 422 and web.get_json()["errors"] == {
        "channel": ["not an external channel"]
    }


def test_the_document_and_its_page_need_no_key(app):
    client = app.test_client()
    document = client.get(f"{API}/openapi.json").get_json()
    assert document["openapi"] == "3.0.3"
    operation = document["paths"][f"{API}/orders/{{number}}/shipments"]["post"]
    assert operation["security"] == [{"apiKey": []}]
    assert "Scope: `orders.ship`." in operation["description"]
    assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    page = client.get(f"{API}/docs")
    assert page.status_code == 200 and b"/orders/{number}/shipments" in page.data


def test_a_host_mounts_the_api_twice_and_each_has_its_document(tmp_path, database_url):
    app = Flask("twice", instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY="s", KOUDAI_DATABASE_URI=database_url, KOUDAI_REGISTER_BLUEPRINTS=False
    )
    Koudai(app)
    try:
        _two_mounts(app)
    finally:
        get_state(app).stop(app)
        engine = get_state(app).engine
        assert engine is not None
        engine.dispose()


def _two_mounts(app: Flask) -> None:
    app.register_blueprint(create_api_blueprint(), url_prefix="/api/v1")
    app.register_blueprint(create_api_blueprint(), url_prefix="/partner", name="partner_api")
    seed_shop(app)
    headers = make_key(app, ["orders.view"])
    client = app.test_client()
    one = client.get("/api/v1/openapi.json").get_json()
    two = client.get("/partner/openapi.json").get_json()
    assert "/api/v1/orders" in one["paths"] and "/partner/orders" not in one["paths"]
    assert "/partner/orders" in two["paths"]
    assert client.get("/partner/orders", headers=headers).status_code == 200
    assert client.get("/api/v1/orders", headers=headers).status_code == 200


def test_refusals_carry_their_figures_for_programs(app):
    numbers = seed_shop(app)
    client = app.test_client()
    short = client.post(
        f"{API}/orders",
        json={
            "channel": "ext",
            "external_id": "ext-2",
            "lines": [{"sku": "SHIRT-B", "quantity": 11, "unit_price": 13900}],
        },
        headers=make_key(app, ["channels.manage"]),
    )
    assert (short.status_code, short.get_json()) == (
        409,
        {
            "code": "OutOfStock",
            "message": "SKU 'SHIRT-B': 11 requested but only 10 available",
            "errors": {},
            "detail": {"sku": "SHIRT-B", "requested": 11, "available": 10},
        },
    )
    number = numbers["ext"]
    headers = make_key(app, ["orders.cancel", "orders.ship"])
    assert client.post(f"{API}/orders/{number}/cancel", json={}, headers=headers).status_code == 200
    refused = client.post(
        f"{API}/orders/{number}/shipments",
        json={"carrier": "shunfeng", "tracking_number": "SF1001"},
        headers=headers,
    )
    assert refused.status_code == 409
    assert refused.get_json()["detail"] == {
        "number": number,
        "status": "cancelled",
        "action": "ship",
    }
    unknown = client.get(f"{API}/skus/NO-SUCH-SKU", headers=make_key(app, ["orders.view"]))
    assert unknown.status_code == 404
    assert (unknown.get_json()["reason"], unknown.get_json()["detail"]) == (
        "unknown_sku",
        {"sku": "NO-SUCH-SKU"},
    )
    nothing = client.get(f"{API}/orders/KD-NONE", headers=make_key(app, ["orders.view"]))
    assert nothing.status_code == 404
    assert set(nothing.get_json()) <= {"code", "message", "errors", "reason", "detail"}


def test_a_refusal_named_in_one_word_says_the_word(app):
    from koudai_flask.blueprints.api.errors import error_response
    from koudai_flask.errors import ValidationError

    with app.test_request_context():
        response = error_response(
            ValidationError("Oxford shirt is not on sale", reason="not_on_sale")
        )
    assert (response.status_code, response.get_json()) == (
        422,
        {
            "code": "ValidationError",
            "message": "Oxford shirt is not on sale",
            "errors": {},
            "reason": "not_on_sale",
        },
    )
