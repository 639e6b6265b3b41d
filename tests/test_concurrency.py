"""Concurrency on PostgreSQL: many buyers, one shelf, each buyer its own session."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import OutOfStock
from koudai_flask.extension import get_state
from koudai_flask.models import Order, Payment, StockMovement
from koudai_flask.services import catalog, inventory, order_clock, orders
from tests.helpers import assert_ledger_consistent

BUYERS = 200


@pytest.fixture
def pg_app(make_app, postgres_url) -> Flask:
    return make_app(
        postgres_url,
        KOUDAI_ENGINE_OPTIONS={"pool_size": 30, "max_overflow": 0, "pool_timeout": 120},
    )


def run_concurrently(app: Flask, count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; return results or errors."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def buyer(i: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[i] = work(i)
            except Exception as exc:  # collected and asserted by the caller
                results[i] = exc

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def outcome(results: list[Any]) -> Counter[str]:
    return Counter(type(r).__name__ for r in results)


def test_200_buyers_for_50_units(pg_app):
    with pg_app.app_context():
        catalog.create_product(title="Lucky bag", skus=[{"code": "BAG", "price": 990, "stock": 50}])
    results = run_concurrently(
        pg_app,
        BUYERS,
        lambda i: orders.place(channel="web", lines=[{"sku": "BAG", "quantity": 1}]),
    )
    assert outcome(results) == Counter({"Order": 50, "OutOfStock": 150})
    with pg_app.app_context():
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(Order)) == 50
        assert inventory.available("BAG") == 0
        assert_ledger_consistent(session)


def test_two_skus_per_order_with_mixed_quantities(pg_app):
    with pg_app.app_context():
        catalog.create_product(
            title="Tea set",
            options=["part"],
            skus=[
                {"code": "CUP", "price": 1500, "attributes": {"part": "cup"}, "stock": 50},
                {"code": "POT", "price": 6800, "attributes": {"part": "pot"}, "stock": 50},
            ],
        )
    rng = random.Random(7)
    wanted = [(rng.randint(1, 3), rng.randint(1, 3)) for _ in range(BUYERS)]

    def place(i: int) -> Order:
        cups, pots = wanted[i]
        # Half the buyers list the SKUs in the other order: locking order must not matter.
        lines = [{"sku": "CUP", "quantity": cups}, {"sku": "POT", "quantity": pots}]
        return orders.place(channel="web", lines=lines if i % 2 else lines[::-1])

    results = run_concurrently(pg_app, BUYERS, place)
    kinds = outcome(results)
    assert set(kinds) <= {"Order", "OutOfStock"}
    won = [wanted[i] for i, r in enumerate(results) if not isinstance(r, OutOfStock)]
    with pg_app.app_context():
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(Order)) == len(won)
        cups_left = 50 - sum(c for c, _ in won)
        pots_left = 50 - sum(p for _, p in won)
        assert inventory.available("CUP") == cups_left >= 0
        assert inventory.available("POT") == pots_left >= 0
        # Every loser was refused for a real shortage at the time, so at the end at least
        # one SKU is too low for the smallest refused order.
        refused = [wanted[i] for i, r in enumerate(results) if isinstance(r, OutOfStock)]
        assert all(c > cups_left or p > pots_left for c, p in refused)
        assert_ledger_consistent(session)


def test_the_same_checkout_submitted_concurrently_is_one_order(pg_app):
    with pg_app.app_context():
        catalog.create_product(title="Mug", skus=[{"code": "MUG", "price": 3900, "stock": 20}])
    results = run_concurrently(
        pg_app,
        40,
        lambda i: (
            orders.place(
                channel="web",
                lines=[{"sku": "MUG", "quantity": 2}],
                idempotency_key="same-checkout",
            ).number
        ),
    )
    assert len(set(results)) == 1, results
    with pg_app.app_context():
        assert inventory.available("MUG") == 18
        assert_ledger_consistent(get_state().session)


def test_a_payment_notify_replayed_concurrently_is_one_payment(pg_app):
    with pg_app.app_context():
        catalog.create_product(title="Pen", skus=[{"code": "PEN", "price": 500, "stock": 5}])
        number = orders.place(channel="web", lines=[{"sku": "PEN", "quantity": 1}]).number
    results = run_concurrently(
        pg_app,
        100,
        lambda i: (
            orders.mark_paid(
                number, amount=500, transaction_id="4200001", provider="wechatpay"
            ).status
        ),
    )
    assert results == ["paid"] * 100
    with pg_app.app_context():
        assert get_state().session.scalar(select(func.count()).select_from(Payment)) == 1


def test_expiry_racing_itself_releases_once(pg_app):
    from datetime import timedelta

    from koudai_flask.models.base import utcnow

    with pg_app.app_context():
        catalog.create_product(title="Cap", skus=[{"code": "CAP", "price": 900, "stock": 9}])
        orders.place(channel="web", lines=[{"sku": "CAP", "quantity": 3}])
    later = utcnow() + timedelta(hours=1)
    results = run_concurrently(pg_app, 8, lambda i: order_clock.expire_unpaid(later))
    assert sum(len(r) for r in results) == 1
    with pg_app.app_context():
        session = get_state().session
        assert inventory.available("CAP") == 9
        expiries = (
            select(func.count()).select_from(StockMovement).where(StockMovement.reason == "expiry")
        )
        assert session.scalar(expiries) == 1
        assert_ledger_consistent(session)


def test_a_stock_change_sent_concurrently_with_one_key_moves_stock_once(pg_app):
    """An ERP's delivery note and stocktake, each delivered several times at once: one
    movement each, and every caller gets the stock as the one that won left it."""
    with pg_app.app_context():
        catalog.create_product(title="Bowl", skus=[{"code": "BOWL", "price": 1500, "stock": 10}])
    added = run_concurrently(
        pg_app, 20, lambda i: inventory.adjust("BOWL", 5, idempotency_key="delivery-9").on_hand
    )
    assert added == [15] * 20
    counted = run_concurrently(
        pg_app,
        20,
        lambda i: (
            inventory.set_on_hand(
                "BOWL", 7 + i % 3, source="erp:test", idempotency_key="count-3"
            ).on_hand
        ),
    )
    assert len(set(counted)) == 1 and counted[0] in (7, 8, 9), counted
    with pg_app.app_context():
        session = get_state().session
        keyed = session.execute(
            select(StockMovement.idempotency_key, func.count())
            .where(StockMovement.idempotency_key.in_(["delivery-9", "count-3"]))
            .group_by(StockMovement.idempotency_key)
        )
        assert dict(keyed.all()) == {"delivery-9": 1, "count-3": 1}
        assert inventory.available("BOWL") == counted[0]
        assert_ledger_consistent(session)


def test_a_buyer_s_first_requests_at_once_make_one_customer(pg_app):
    """A host user's first two pages, or a WeChat visitor's, load at the same moment."""
    from koudai_flask.models import Customer, CustomerIdentity
    from koudai_flask.services import customers

    by_user = run_concurrently(pg_app, 16, lambda i: customers.for_user("first-visit").id)
    by_openid = run_concurrently(
        pg_app, 16, lambda i: customers.by_identity("wechat_openid", "o-first", create=True).id
    )
    assert len(set(by_user)) == 1 and len(set(by_openid)) == 1, (by_user, by_openid)
    with pg_app.app_context():
        session = get_state().session
        kinds = session.execute(
            select(CustomerIdentity.kind, CustomerIdentity.value, CustomerIdentity.customer_id)
        ).all()
        assert sorted(kinds) == sorted(
            [("web", "first-visit", by_user[0]), ("wechat_openid", "o-first", by_openid[0])]
        )
        assert session.scalar(select(func.count()).select_from(Customer)) == 2


def test_a_refund_request_racing_the_shipment_lets_exactly_one_through(pg_app):
    """Half the threads ask for a refund, half ship, all at once: the first to move the
    order wins; every other call is refused and wrote nothing (one event per move)."""
    from koudai_flask.errors import InvalidTransition
    from koudai_flask.models import OrderEvent, Shipment

    with pg_app.app_context():
        catalog.create_product(title="Vase", skus=[{"code": "VASE", "price": 9900, "stock": 3}])
        number = orders.place(channel="web", lines=[{"sku": "VASE", "quantity": 1}]).number
        orders.mark_paid(number, amount=9900, transaction_id="tx-vase", provider="offline")

    def act(i: int) -> str:
        if i % 2:
            return orders.request_refund(number, reason="changed my mind").status
        return orders.ship(number, carrier="shunfeng", tracking_number=f"SF9{i:05d}").status

    results = run_concurrently(pg_app, 20, act)
    moved = [r for r in results if isinstance(r, str)]
    assert len(moved) == 1 and moved[0] in ("refunding", "shipped")
    assert all(isinstance(r, InvalidTransition) for r in results if not isinstance(r, str))
    with pg_app.app_context():
        session = get_state().session
        events = session.scalars(
            select(OrderEvent.to_status).join(Order).where(Order.number == number)
        ).all()
        assert events == ["pending_payment", "paid", moved[0]]
        shipments = session.scalar(select(func.count()).select_from(Shipment))
        assert shipments == (1 if moved[0] == "shipped" else 0)
        assert_ledger_consistent(session)
