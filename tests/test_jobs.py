"""Schedules, the worker command and the documentation of every setting."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from koudai_flask import Koudai
from koudai_flask.config import SETTINGS
from koudai_flask.extension import get_state
from koudai_flask.jobs import schedules, tasks
from koudai_flask.jobs.queue import get_queue
from koudai_flask.models import Order, OutboxEvent, Reservation
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, inventory, orders


def _expire_now(app) -> None:
    session = get_state(app).session
    session.execute(update(Reservation).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_inline_schedule_expires_unpaid_orders_after_a_request(make_app, database_url, monkeypatch):
    app = make_app(database_url, KOUDAI_EXPIRY_INTERVAL=30)
    with app.app_context():
        catalog.create_product(title="Kite", skus=[{"code": "KITE", "price": 100, "stock": 2}])
        number = orders.place(channel="web", lines=[{"sku": "KITE", "quantity": 2}]).number
        _expire_now(app)
    client = app.test_client()
    client.get("/shop/")  # not due yet: the first run waits one interval
    with app.app_context():
        assert get_state().session.scalar(select(Order.status)) == "pending_payment"
    clock = schedules.time.monotonic() + 31
    monkeypatch.setattr(schedules.time, "monotonic", lambda: clock)
    client.get("/shop/")
    with app.app_context():
        assert (
            get_state().session.scalar(select(Order.status).where(Order.number == number))
            == "cancelled"
        )
        assert inventory.available("KITE") == 2


def test_expire_reservations_task_counts_orders_and_loose_holds(app, shirt):
    orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    inventory.reserve("SHIRT-B", 2, idempotency_key="hold")
    _expire_now(app)
    assert tasks.expire_reservations() == 2
    assert tasks.expire_reservations() == 0
    assert inventory.available("SHIRT-W") == 10
    assert inventory.available("SHIRT-B") == 10


def test_worker_command_runs_jobs_inside_the_app(make_app, database_url, redis_url):
    app = make_app(
        database_url,
        KOUDAI_JOBS="rq",
        KOUDAI_REDIS_URL=redis_url,
        KOUDAI_QUEUE_NAME=f"koudai-test-{uuid.uuid4().hex[:8]}",
    )
    # Subscribers, so the events are queued (one nobody listens to is written done).
    for topic in ("stock.changed", "product.created"):
        Koudai.subscribe(app, topic, lambda topic, payload: None)
    with app.app_context():
        catalog.create_product(title="Drum", skus=[{"code": "DRUM", "price": 100, "stock": 1}])
        queued = len(get_queue())
        assert queued > 0
        assert queued == get_state().session.scalar(select(func.count()).select_from(OutboxEvent))
    result = app.test_cli_runner().invoke(args=["koudai", "worker", "--burst", "--no-schedule"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert len(get_queue()) == 0
        session = get_state().session
        rows = session.execute(
            select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status)
        ).all()
        assert Counter(dict(rows)) == Counter({"done": queued})


def test_periodic_jobs_use_the_configured_intervals(make_app, database_url):
    app = make_app(
        database_url,
        KOUDAI_EXPIRY_INTERVAL=15,
        KOUDAI_RELAY_INTERVAL=45,
        KOUDAI_SYNC_INTERVAL=5,
        KOUDAI_RECONCILE_INTERVAL=600,
        KOUDAI_CRM_RECOMPUTE_INTERVAL=3600,
        KOUDAI_CAMPAIGN_INTERVAL=20,
        KOUDAI_FUNNEL_ROLLUP_INTERVAL=300,
    )
    assert [(name, every) for name, _, every in schedules.periodic_jobs(app)] == [
        ("koudai-expire-reservations", 15),
        ("koudai-outbox-relay", 45),
        ("koudai-sync-tick", 5),
        ("koudai-reconcile", 600),
        ("koudai-crm-rule-tags", 3600),
        ("koudai-campaign-sweep", 20),
        ("koudai-funnel-rollup", 300),
        ("koudai-idempotency-prune", 3600),
        ("koudai-auto-complete", 3600),
        ("koudai-outbox-prune", 3600),
    ]


def test_readme_documents_every_setting():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(KOUDAI_[A-Z0-9_]+)` \|", readme, flags=re.M))
    assert documented == set(SETTINGS)


def test_only_one_worker_enqueues_the_periodic_jobs(make_app, database_url, redis_url):
    import threading
    import time

    app = make_app(
        database_url,
        KOUDAI_JOBS="rq",
        KOUDAI_REDIS_URL=redis_url,
        KOUDAI_QUEUE_NAME=f"koudai-test-{uuid.uuid4().hex[:8]}",
    )
    stop = threading.Event()
    threads = [schedules.start_cron_thread(app, stop) for _ in range(3)]  # three workers
    try:
        deadline = time.monotonic() + 10
        with app.app_context():
            expected = len(schedules.periodic_jobs(app))
            while len(get_queue()) < expected and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the other two had their chance
            assert len(get_queue()) == expected
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def test_when_the_leading_worker_stops_another_takes_the_periodic_jobs_over(
    make_app, database_url, redis_url, monkeypatch
):
    import threading
    import time

    monkeypatch.setattr(schedules, "CRON_LEASE", 2)  # seconds; 30 in production
    app = make_app(
        database_url,
        KOUDAI_JOBS="rq",
        KOUDAI_REDIS_URL=redis_url,
        KOUDAI_QUEUE_NAME=f"koudai-test-{uuid.uuid4().hex[:8]}",
    )
    leader_stop, follower_stop = threading.Event(), threading.Event()
    leader = schedules.start_cron_thread(app, leader_stop)
    follower: threading.Thread | None = None
    try:
        with app.app_context():
            expected = len(schedules.periodic_jobs(app))

            def wait_for(count: int) -> None:
                deadline = time.monotonic() + 10
                while len(get_queue()) < count and time.monotonic() < deadline:
                    time.sleep(0.05)

            wait_for(expected)
            assert len(get_queue()) == expected
            follower = schedules.start_cron_thread(app, follower_stop)
            time.sleep(3)  # longer than a lease: the leader keeps it, the follower waits
            assert len(get_queue()) == expected
            leader_stop.set()
            leader.join(5)
            wait_for(2 * expected)  # the lease ran out and the follower took over
            assert len(get_queue()) == 2 * expected
    finally:
        leader_stop.set()
        follower_stop.set()
        for thread in (leader, follower):
            if thread is not None:
                thread.join(5)


def test_a_schedule_thread_runs_the_periodic_jobs_without_further_requests(make_app, database_url):
    import time

    app = make_app(database_url, KOUDAI_EXPIRY_INTERVAL=1, KOUDAI_INLINE_SCHEDULE="thread")
    with app.app_context():
        catalog.create_product(title="Kite", skus=[{"code": "KITE", "price": 100, "stock": 2}])
        number = orders.place(channel="web", lines=[{"sku": "KITE", "quantity": 2}]).number
        _expire_now(app)
        status = select(Order.status).where(Order.number == number)
        assert get_state().session.scalar(status) == "pending_payment"
        get_state().session.rollback()
    app.test_client().get("/shop/")  # the first request starts the thread; no other follows
    deadline = time.monotonic() + 20
    with app.app_context():
        session = get_state().session
        while session.scalar(status) != "cancelled":
            session.rollback()
            assert time.monotonic() < deadline, "the schedule thread never expired the order"
            time.sleep(0.1)
        assert inventory.available("KITE") == 2


def test_a_periodic_job_turned_on_after_start_waits_its_interval_inline(
    make_app, database_url, monkeypatch
):
    """Text messages set up after the app started: the back-in-stock sweep joins the inline
    schedule at its own interval instead of failing the request that carries the jobs."""
    app = make_app(database_url, KOUDAI_STOCK_ALERT_INTERVAL=3600)
    schedule = schedules.InlineSchedule(app)
    app.config["KOUDAI_SMS"] = {"provider": "log"}
    ran: list[str] = []
    original = schedules.periodic_jobs
    monkeypatch.setattr(
        schedules,
        "periodic_jobs",
        lambda app_: [(n, lambda n=n: ran.append(n), e) for n, _, e in original(app_)],
    )
    with app.app_context():
        schedule.run_due(app)
    assert "koudai-stock-alerts" not in ran  # its hour starts now
    assert ("koudai-stock-alerts", 3600) in [(n, e) for n, _, e in original(app)]
