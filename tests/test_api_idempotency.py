"""Idempotency-Key on POSTs and the stock compare-and-set, for real on PostgreSQL threads."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from koudai_flask.jobs import schedules
from koudai_flask.models import (
    ApiKey,
    AuditEntry,
    IdempotencyRecord,
    Product,
    Sku,
    StockLevel,
    StockMovement,
)
from koudai_flask.models.base import utcnow
from koudai_flask.services import inventory
from koudai_flask.services.transaction import current_session
from tests.api_support import API, OWNER, make_key, seed_shop
from tests.helpers import assert_ledger_consistent

NEW_PRODUCT = {"title": "Green tea", "skus": [{"code": "TEA-G", "price": 800, "stock": 4}]}


def concurrently(count: int, call: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_the_same_post_twenty_times_at_once_has_one_effect_and_one_answer(make_app, postgres_url):
    app = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_size": 22})
    seed_shop(app)
    headers = {**make_key(app, ["catalog.edit"]), "Idempotency-Key": "create-tea-1"}

    def post(_: int) -> tuple[int, bytes, str | None]:
        response = app.test_client().post(f"{API}/products", json=NEW_PRODUCT, headers=headers)
        return response.status_code, response.data, response.headers.get("Idempotent-Replayed")

    results = concurrently(20, post)
    assert {status for status, _, _ in results} == {201}
    assert len({body for _, body, _ in results}) == 1
    assert sorted(flag or "" for _, _, flag in results) == [""] + ["true"] * 19
    with app.app_context():
        session = current_session()
        assert session.scalar(select(func.count()).where(Product.title == "Green tea")) == 1
        assert inventory.available("TEA-G") == 4
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1
        assert_ledger_consistent(session)


def test_concurrent_adjustments_with_one_key_move_stock_once(make_app, postgres_url):
    app = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_size": 22})
    seed_shop(app)
    headers = {**make_key(app, ["stock.adjust"]), "Idempotency-Key": "delivery-77"}

    def post(_: int) -> tuple[int, Any]:
        response = app.test_client().post(
            f"{API}/stock/SHIRT-B/adjustments", json={"delta": 5}, headers=headers
        )
        return response.status_code, response.get_json()

    results = concurrently(20, post)
    expected = {"sku": "SHIRT-B", "location": "main", "on_hand": 15, "reserved": 0, "available": 15}
    assert results == [(201, expected)] * 20
    with app.app_context():
        assert inventory.available("SHIRT-B") == 15
        assert_ledger_consistent(current_session())


def test_the_hourly_prune_forgets_day_old_replies_and_a_repeat_then_runs_anew(app):
    seed_shop(app)
    headers = {**make_key(app, ["stock.adjust"]), "Idempotency-Key": "delivery-9"}
    client = app.test_client()
    url = f"{API}/stock/SHIRT-B/adjustments"
    assert client.post(url, json={"delta": 2}, headers=headers).status_code == 201
    replay = client.post(url, json={"delta": 2}, headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    prune = dict((name, job) for name, job, _ in schedules.periodic_jobs(app))
    with app.app_context():
        assert prune["koudai-idempotency-prune"]() == 0  # an hour-old reply is kept
        session = current_session()
        session.execute(
            update(IdempotencyRecord).values(created_at=utcnow() - timedelta(days=1, minutes=1))
        )
        session.commit()
        assert prune["koudai-idempotency-prune"]() == 1
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    again = client.post(url, json={"delta": 2}, headers=headers)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, None)
    with app.app_context():
        # The ledger keeps its own key for ever: the stock moved once (10 + 2), not twice.
        assert inventory.available("SHIRT-B") == 12
        assert_ledger_consistent(current_session())


def test_stock_changes_through_the_api_are_audited_as_the_owner_s_naming_the_key(app):
    seed_shop(app)
    headers = make_key(app, ["stock.adjust"])
    client = app.test_client()
    adjust = {"delta": -3, "reason": "damaged", "note": "wet box"}
    assert (
        client.post(f"{API}/stock/SHIRT-B/adjustments", json=adjust, headers=headers).status_code
        == 201
    )
    assert (
        client.post(
            f"{API}/stock/SHIRT-B/counts", json={"quantity": 9}, headers=headers
        ).status_code
        == 201
    )
    # A count that finds the figure it expected moves nothing and is no change to audit.
    assert (
        client.post(
            f"{API}/stock/SHIRT-B/counts", json={"quantity": 9}, headers=headers
        ).status_code
        == 201
    )
    with app.app_context():
        entries = (
            current_session()
            .scalars(
                select(AuditEntry).where(AuditEntry.object_type == "sku").order_by(AuditEntry.id)
            )
            .all()
        )
        assert [(e.action, e.actor, e.object_id) for e in entries] == [
            ("stock.adjust", f"staff:{OWNER}", "SHIRT-B"),
            ("stock.count", f"staff:{OWNER}", "SHIRT-B"),
        ]
        assert [(e.before["on_hand"], e.after["on_hand"]) for e in entries] == [(10, 7), (7, 9)]
        assert entries[0].after["reason"] == "damaged" and entries[1].after["counted"] == 9
        prefix = current_session().scalar(select(ApiKey.prefix))
        assert {e.after["api_key"] for e in entries} == {prefix}


def test_a_key_reused_with_another_body_is_refused_and_changes_nothing(app):
    seed_shop(app)
    headers = {**make_key(app, ["stock.adjust"]), "Idempotency-Key": "k-1"}
    client = app.test_client()
    first = client.post(f"{API}/stock/SHIRT-B/adjustments", json={"delta": 1}, headers=headers)
    assert first.status_code == 201
    again = client.post(f"{API}/stock/SHIRT-B/adjustments", json={"delta": 1}, headers=headers)
    assert (again.status_code, again.data) == (201, first.data)
    other = client.post(f"{API}/stock/SHIRT-B/adjustments", json={"delta": 9}, headers=headers)
    assert other.status_code == 422
    assert other.get_json()["code"] == "IdempotencyKeyReused"
    assert inventory.available("SHIRT-B") == 11


def test_an_error_answer_is_replayed_too(app):
    seed_shop(app)
    headers = {**make_key(app, ["stock.adjust"]), "Idempotency-Key": "too-much"}
    client = app.test_client()
    first = client.post(f"{API}/stock/SHIRT-B/adjustments", json={"delta": -50}, headers=headers)
    assert first.status_code == 409 and first.get_json()["code"] == "OutOfStock"
    inventory.adjust("SHIRT-B", 100, reason="delivery")
    again = client.post(f"{API}/stock/SHIRT-B/adjustments", json={"delta": -50}, headers=headers)
    assert (again.status_code, again.data) == (409, first.data)
    assert inventory.available("SHIRT-B") == 110


def test_compare_and_set_refuses_a_stale_count_with_409(app):
    seed_shop(app)
    client = app.test_client()
    headers = make_key(app, ["stock.adjust"])
    url = f"{API}/stock/SHIRT-B/adjustments"
    fresh = client.post(url, json={"delta": 1, "expected_on_hand": 10}, headers=headers)
    assert fresh.status_code == 201 and fresh.get_json()["on_hand"] == 11
    movements = current_session().scalar(select(func.count()).select_from(StockMovement))
    stale = client.post(url, json={"delta": 1, "expected_on_hand": 10}, headers=headers)
    assert stale.status_code == 409
    assert stale.get_json() == {
        "code": "StaleQuantity",
        "message": "SKU 'SHIRT-B': on hand is 11, not the expected 10",
        "errors": {"expected_on_hand": ["on hand is now 11"]},
        "detail": {"sku": "SHIRT-B", "expected_on_hand": 10, "on_hand": 11},
    }
    count = client.post(
        f"{API}/stock/SHIRT-B/counts", json={"quantity": 3, "expected_on_hand": 10}, headers=headers
    )
    assert count.status_code == 409
    current_session().rollback()
    assert current_session().scalar(select(func.count()).select_from(StockMovement)) == movements
    assert inventory.available("SHIRT-B") == 11


def test_concurrent_compare_and_set_lets_exactly_one_through(make_app, postgres_url):
    app = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_size": 12})
    seed_shop(app)
    headers = make_key(app, ["stock.adjust"])

    def post(i: int) -> int:
        response = app.test_client().post(
            f"{API}/stock/SHIRT-B/counts",
            json={"quantity": 20 + i, "expected_on_hand": 10},
            headers={**headers, "Idempotency-Key": f"count-{i}"},
        )
        return response.status_code

    statuses = concurrently(10, post)
    assert sorted(statuses) == [201] + [409] * 9
    with app.app_context():
        session = current_session()
        on_hand = session.scalar(
            select(StockLevel.on_hand)
            .join(Sku, Sku.id == StockLevel.sku_id)
            .where(Sku.code == "SHIRT-B")
        )
        assert on_hand == 20 + statuses.index(201)
        assert_ledger_consistent(session)
