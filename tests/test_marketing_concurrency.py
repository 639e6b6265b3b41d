"""Coupons under concurrency on PostgreSQL: each checkout its own thread and session."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import InvalidTransition
from koudai_flask.extension import get_state
from koudai_flask.models import Coupon, CouponCustomerUse, CouponRedemption, Order, OrderDiscount
from koudai_flask.services import catalog, customers, inventory, orders
from koudai_flask.services import marketing as mk
from tests.helpers import assert_ledger_consistent
from tests.test_concurrency import outcome, run_concurrently

pytestmark = pytest.mark.services_only

CHECKOUTS = 50


@pytest.fixture
def pg_app(make_app: Any, postgres_url: str) -> Flask:
    app = make_app(
        postgres_url,
        KOUDAI_ENGINE_OPTIONS={"pool_size": 30, "max_overflow": 0, "pool_timeout": 120},
    )
    with app.app_context():
        catalog.create_product(
            title="Mooncake", skus=[{"code": "CAKE", "price": 8800, "stock": 100}]
        )
        session = get_state().session
        session.add(
            Coupon(code="MID-AUTUMN", name="中秋", kind="fixed", value=1000, used=0, total_limit=10)
        )
        session.commit()
    return app


def checkout(customer_id: int | None = None, code: str = "MID-AUTUMN") -> Order:
    return orders.place(
        channel="web",
        lines=[{"sku": "CAKE", "quantity": 1}],
        customer=customer_id,
        marketing=True,
        coupon_code=code,
    )


def totals(app: Flask) -> tuple[int, int, int, int]:
    with app.app_context():
        session = get_state().session
        used = session.scalar(select(Coupon.used))
        redeemed = session.scalar(
            select(func.count())
            .select_from(CouponRedemption)
            .where(CouponRedemption.status == "redeemed")
        )
        placed = session.scalar(select(func.count()).select_from(Order))
        return int(used), int(redeemed), int(placed), inventory.available("CAKE")


def test_a_coupon_with_10_uses_and_50_concurrent_checkouts_is_redeemed_10_times(pg_app):
    results = run_concurrently(pg_app, CHECKOUTS, lambda i: checkout())
    assert outcome(results) == Counter({"Order": 10, "CouponRefused": 40})
    assert {r.reason for r in results if isinstance(r, mk.CouponRefused)} == {"used_up"}
    assert all(r.discount == 1000 and r.total == 7800 for r in results if isinstance(r, Order))
    # Refused checkouts left nothing behind: no order, no hold, no discount line.
    assert totals(pg_app) == (10, 10, 10, 90)
    with pg_app.app_context():
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(OrderDiscount)) == 10
        assert_ledger_consistent(session)


def test_the_per_customer_limit_holds_under_concurrency(pg_app):
    with pg_app.app_context():
        session = get_state().session
        session.add(
            Coupon(code="ONCE", name="新客", kind="fixed", value=500, used=0, per_customer_limit=1)
        )
        session.commit()
        buyer = customers.for_user("alice").id
    results = run_concurrently(pg_app, 20, lambda i: checkout(buyer, "ONCE"))
    assert outcome(results) == Counter({"Order": 1, "CouponRefused": 19})
    with pg_app.app_context():
        session = get_state().session
        assert session.scalar(select(Coupon.used).where(Coupon.code == "ONCE")) == 1
        assert session.scalar(select(CouponCustomerUse.used)) == 1
        assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_a_cancelled_order_gives_its_use_back_once_under_concurrency(pg_app):
    with pg_app.app_context():
        numbers = [checkout().number for _ in range(10)]
    assert totals(pg_app)[:2] == (10, 10)
    # Buyer, staff and the expiry job cancel the same order at once: one of them wins.
    results = run_concurrently(
        pg_app, 12, lambda i: orders.cancel(numbers[0], reason=f"cancel {i}")
    )
    assert outcome(results) == Counter({"Order": 1, "InvalidTransition": 11})
    assert all(isinstance(r, Order | InvalidTransition) for r in results)
    assert totals(pg_app) == (9, 9, 10, 91)
    # The use given back is taken by exactly one of many new checkouts.
    results = run_concurrently(pg_app, 20, lambda i: checkout())
    assert outcome(results) == Counter({"Order": 1, "CouponRefused": 19})
    assert totals(pg_app) == (10, 10, 11, 90)
