"""Shared set-up of the CRM tests: customers with orders of chosen totals, days and channels."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from koudai_flask.extension import get_state
from koudai_flask.models import Order, OutboxEvent, Refund
from koudai_flask.models.base import utcnow

_numbers = itertools.count(1)


def add_order(
    customer_id: int | None,
    *,
    total: int,
    days_ago: float = 1,
    channel: str = "web",
    status: str = "paid",
    city: str = "",
    refunded: int = 0,
) -> Order:
    """An order row as an import would leave it (no stock involved)."""
    session = get_state().session
    n = next(_numbers)
    at = utcnow() - timedelta(days=days_ago)
    order = Order(
        number=f"CRM{n:08d}",
        status=status,
        channel=channel,
        external_id=None if channel == "web" else f"X{n}",
        customer_id=customer_id,
        address={"name": "Buyer", "phone": "13800000000", "city": city, "street": "1 Road"}
        if city
        else None,
        subtotal=total,
        total=total,
        created_at=at,
        paid_at=at if status != "pending_payment" else None,
    )
    session.add(order)
    session.flush()
    if refunded:
        session.add(Refund(order_id=order.id, amount=refunded, reason="", idempotency_key=f"R{n}"))
    session.commit()
    return order


def events(topic: str) -> list[dict[str, Any]]:
    session = get_state().session
    return [
        e.payload
        for e in session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        )
    ]


# -- two calls at once -----------------------------------------------------------------------


def race(app: Any, first: Any, second: Any, table: str, waiting: str | None = None) -> object:
    """Run ``first()`` in a transaction left open, then ``second()`` beside it; once
    ``second`` waits for a row lock on ``table`` (a statement like ``waiting``, by default
    a SELECT ... FOR UPDATE), commit ``first``. Returns what ``second`` returned or raised
    (a KoudaiError)."""
    import threading

    from koudai_flask.errors import KoudaiError
    from koudai_flask.services.transaction import unit_of_work

    first_open, finish_first = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def run_first() -> None:
        with app.app_context(), unit_of_work():
            first()
            first_open.set()
            finish_first.wait(30)  # commits when told

    def run_second() -> None:
        with app.app_context():
            try:
                outcome["second"] = second()
            except KoudaiError as exc:
                outcome["second"] = exc

    one, two = threading.Thread(target=run_first), threading.Thread(target=run_second)
    one.start()
    try:
        assert first_open.wait(30)
        two.start()
        _wait_until_blocked(app, waiting or f"%FROM {table} %FOR UPDATE%")
        assert "second" not in outcome
    finally:
        finish_first.set()
        one.join(30)
        if two.ident is not None:  # started
            two.join(30)
    return outcome["second"]


def _wait_until_blocked(app: Any, pattern: str) -> None:
    """Until some backend of this database waits for a lock in a statement like ``pattern``."""
    import time

    from sqlalchemy import text

    with app.app_context():
        session = get_state().session
        deadline = time.monotonic() + 30
        while not session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND query LIKE :pattern"
            ),
            {"pattern": pattern},
        ):
            session.rollback()
            assert time.monotonic() < deadline, f"no statement like {pattern!r} waited for a lock"
            time.sleep(0.05)
        session.rollback()
