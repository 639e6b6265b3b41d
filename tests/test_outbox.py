"""The transactional outbox with a real Redis, and inline dispatch without one."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker
from rq.job import Job, JobStatus
from sqlalchemy import func, select, update

from koudai_flask import Koudai
from koudai_flask.errors import OutOfStock
from koudai_flask.extension import get_state
from koudai_flask.jobs.outbox import MAX_ATTEMPTS, deliver_event, job_id, relay_outbox
from koudai_flask.jobs.queue import get_queue, job_class_for, redis_connection
from koudai_flask.models import OutboxEvent
from koudai_flask.services import catalog, orders

pytestmark = pytest.mark.services_only


class Recorder:
    """An outbox subscriber that remembers every event it was handed."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        self.seen.append((topic, payload))


def statuses(app: Flask) -> Counter[str]:
    session = get_state(app).session
    session.expire_all()
    rows = session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status))
    return Counter(dict(rows.all()))


def event_count(app: Flask) -> int:
    return get_state(app).session.scalar(select(func.count()).select_from(OutboxEvent))


@pytest.fixture
def rq_app(make_app, database_url, redis_url) -> Flask:
    app = make_app(
        database_url,
        KOUDAI_JOBS="rq",
        KOUDAI_REDIS_URL=redis_url,
        KOUDAI_QUEUE_NAME=f"koudai-test-{uuid.uuid4().hex[:8]}",
    )
    with app.app_context():
        catalog.create_product(title="Fan", skus=[{"code": "FAN", "price": 4900, "stock": 5}])
        work(app)  # deliver the catalog's own events, so each test starts with none queued
        assert statuses(app) == Counter({"done": event_count(app)})
    return app


def work(app: Flask) -> None:
    SimpleWorker(
        [get_queue(app)], connection=redis_connection(app), job_class=job_class_for(app)
    ).work(burst=True)


def test_each_event_is_exactly_one_job(rq_app):
    recorder = Recorder()
    Koudai.subscribe(rq_app, "order.placed", recorder)
    Koudai.subscribe(rq_app, "stock.changed", recorder)
    with rq_app.app_context():
        before = event_count(rq_app)
        order = orders.place(channel="web", lines=[{"sku": "FAN", "quantity": 2}])
        events = event_count(rq_app) - before
        assert events == 2  # stock.changed (reservation) and order.placed
        assert len(get_queue()) == events
        assert relay_outbox(grace=0) == 0  # the jobs exist: nothing is sent twice
        assert len(get_queue()) == events
        work(rq_app)
        assert statuses(rq_app) == Counter({"done": event_count(rq_app)})
        assert sorted(t for t, _ in recorder.seen) == ["order.placed", "stock.changed"]
        placed = next(p for t, p in recorder.seen if t == "order.placed")
        assert placed["number"] == order.number


def test_relay_resends_what_redis_lost(rq_app):
    recorder = Recorder()
    Koudai.subscribe(rq_app, "order.placed", recorder)
    with rq_app.app_context():
        first = orders.place(channel="web", lines=[{"sku": "FAN", "quantity": 1}])
        redis: Redis = redis_connection()
        redis.flushdb()
        assert len(get_queue()) == 0
        second = orders.place(channel="web", lines=[{"sku": "FAN", "quantity": 1}])
        work(rq_app)  # only the second order's jobs survive
        assert [p["number"] for _, p in recorder.seen] == [second.number]
        # The first order's subscribed event (its stock.changed has no subscriber here, so it
        # was written done and never needed a job).
        assert statuses(rq_app)["enqueued"] == 1
        assert relay_outbox(grace=0) == 1
        assert relay_outbox(grace=0) == 0  # the re-sent jobs exist now
        work(rq_app)
        assert [p["number"] for _, p in recorder.seen] == [second.number, first.number]
        assert statuses(rq_app) == Counter({"done": event_count(rq_app)})
        redis.flushdb()
        assert relay_outbox(grace=0) == 0  # everything acknowledged: nothing to resend


def _placed_event(recorder: Recorder) -> int:
    """Place an order of one fan; the id of its ``order.placed`` event (subscribed)."""
    number = orders.place(channel="web", lines=[{"sku": "FAN", "quantity": 1}]).number
    session = get_state().session
    event_id = session.scalar(
        select(OutboxEvent.id).where(
            OutboxEvent.topic == "order.placed", OutboxEvent.payload["number"].as_string() == number
        )
    )
    session.rollback()
    assert event_id is not None
    return event_id


def _set_event(event_id: int, **values: Any) -> None:
    session = get_state().session
    session.execute(update(OutboxEvent).where(OutboxEvent.id == event_id).values(**values))
    session.commit()


def test_a_lost_enqueued_mark_is_put_back_without_a_second_job(rq_app):
    recorder = Recorder()
    Koudai.subscribe(rq_app, "order.placed", recorder)
    with rq_app.app_context():
        event_id = _placed_event(recorder)
        # The process stopped between queueing the job and marking the row.
        _set_event(event_id, status="pending")
        assert relay_outbox(grace=0) == 0
        assert statuses(rq_app)["enqueued"] == 1
        assert len(get_queue()) == 1
        work(rq_app)
        assert [t for t, _ in recorder.seen] == ["order.placed"]


def test_a_failed_job_is_sent_again_until_its_attempts_run_out(rq_app, caplog):
    recorder = Recorder()
    Koudai.subscribe(rq_app, "order.placed", recorder)
    with rq_app.app_context():
        event_id = _placed_event(recorder)

        def fail_its_job() -> None:
            # As RQ leaves a job it gave up on after its own retries: out of the queue, failed.
            job = Job.fetch(job_id(event_id), connection=redis_connection())
            get_queue().remove(job.id)
            job.set_status(JobStatus.FAILED)

        fail_its_job()
        assert relay_outbox(grace=0) == 1
        session = get_state().session
        assert session.get(OutboxEvent, event_id).attempts == 2
        session.rollback()
        assert Job.fetch(job_id(event_id), connection=redis_connection()).get_status() == (
            JobStatus.QUEUED
        )
        fail_its_job()
        _set_event(event_id, attempts=MAX_ATTEMPTS)
        with caplog.at_level("ERROR", logger="koudai_flask"):
            assert relay_outbox(grace=0) == 0
        assert f"outbox: event {event_id} gave up after {MAX_ATTEMPTS} attempts" in caplog.text
        assert statuses(rq_app)["dead"] == 1
        work(rq_app)  # the failed job is not run again
        assert recorder.seen == []


def test_a_job_for_a_missing_or_handled_event_runs_no_handler(rq_app):
    recorder = Recorder()
    Koudai.subscribe(rq_app, "order.placed", recorder)
    with rq_app.app_context():
        event_id = _placed_event(recorder)
        work(rq_app)
        assert len(recorder.seen) == 1
        assert deliver_event(event_id) == "already done"
        assert deliver_event(event_id + 1000) == "missing"
        assert len(recorder.seen) == 1


def test_rolled_back_change_enqueues_nothing(rq_app):
    with rq_app.app_context():
        before = event_count(rq_app)
        with pytest.raises(OutOfStock):
            orders.place(channel="web", lines=[{"sku": "FAN", "quantity": 99}])
        assert event_count(rq_app) == before
        assert len(get_queue()) == 0


def test_redis_down_at_commit_keeps_the_events_for_the_relay(make_app, database_url, redis_url):
    queue_name = f"koudai-test-{uuid.uuid4().hex[:8]}"
    down = make_app(
        database_url,
        KOUDAI_JOBS="rq",
        KOUDAI_QUEUE_NAME=queue_name,
        KOUDAI_REDIS_URL="redis://127.0.0.1:1/0",
    )
    recorder = Recorder()  # events nobody subscribes to are written done, never queued
    for topic in ("stock.changed", "order.placed", "product.created"):
        Koudai.subscribe(down, topic, recorder)
    with down.app_context():
        catalog.create_product(title="Lamp", skus=[{"code": "LAMP", "price": 100, "stock": 3}])
        order = orders.place(channel="web", lines=[{"sku": "LAMP", "quantity": 1}])
        assert order.status == "pending_payment"
        pending = statuses(down)["pending"]
        assert pending == event_count(down) > 0
    up = make_app(
        database_url, KOUDAI_JOBS="rq", KOUDAI_QUEUE_NAME=queue_name, KOUDAI_REDIS_URL=redis_url
    )
    for topic in ("stock.changed", "order.placed", "product.created"):
        Koudai.subscribe(up, topic, recorder)
    with up.app_context():
        get_queue().empty()
        assert relay_outbox(grace=0) == pending
        work(up)
        assert statuses(up) == Counter({"done": pending})


def test_inline_mode_runs_handlers_after_commit_and_retries_failures(app):
    calls: list[str] = []

    def flaky(topic: str, payload: dict[str, Any]) -> None:
        calls.append(payload["number"])
        if len(calls) == 1:
            raise RuntimeError("downstream is down")

    Koudai.subscribe(app, "order.placed", flaky)
    catalog.create_product(title="Bowl", skus=[{"code": "BOWL", "price": 100, "stock": 3}])
    order = orders.place(channel="web", lines=[{"sku": "BOWL", "quantity": 1}])
    assert calls == [order.number]
    failed = get_state(app).session.scalar(
        select(OutboxEvent).where(OutboxEvent.topic == "order.placed")
    )
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert "downstream is down" in failed.last_error
    assert relay_outbox() == 1
    assert calls == [order.number, order.number]
    assert statuses(app) == Counter({"done": event_count(app)})
    assert relay_outbox() == 0


# -- retention ------------------------------------------------------------------------------


def test_prune_deletes_only_events_handled_longer_ago_than_kept(app):
    from datetime import timedelta

    from koudai_flask.jobs import tasks
    from koudai_flask.models.base import utcnow
    from koudai_flask.services import outbox

    session = get_state().session
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)

    def event(name: str, status: str, done_at: Any) -> None:
        session.add(
            OutboxEvent(topic=name, payload={}, status=status, done_at=done_at, created_at=old)
        )

    for n in range(5):
        event(f"done-old-{n}", "done", old)
    event("done-recent", "done", recent)
    event("pending-old", "pending", None)
    event("enqueued-old", "enqueued", None)
    session.commit()

    assert outbox.prune(timedelta(days=30), batch=2, max_batches=2) == 4  # the rest next run
    assert outbox.prune(timedelta(days=30), batch=2) == 1
    left = sorted(session.scalars(select(OutboxEvent.topic)))
    assert left == ["done-recent", "enqueued-old", "pending-old"]
    assert outbox.prune(timedelta(days=30)) == 0

    app.config["KOUDAI_OUTBOX_KEEP"] = 28 * 86400  # the periodic job's setting
    assert tasks.prune_outbox() == 1
    app.config["KOUDAI_OUTBOX_KEEP"] = None
    event("done-very-old", "done", now - timedelta(days=900))
    session.commit()
    assert tasks.prune_outbox() == 0
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 3


def test_the_outbox_prune_is_scheduled_unless_events_are_kept_for_good(make_app, database_url):
    from datetime import timedelta

    from koudai_flask.errors import ConfigError
    from koudai_flask.jobs import schedules, tasks

    def pruning(app: Flask) -> list[tuple[Any, int]]:
        return [
            (f, every)
            for name, f, every in schedules.periodic_jobs(app)
            if name == "koudai-outbox-prune"
        ]

    assert pruning(make_app(database_url)) == [(tasks.prune_outbox, 3600)]
    week = make_app(database_url, KOUDAI_OUTBOX_KEEP=timedelta(days=7))
    assert week.config["KOUDAI_OUTBOX_KEEP"] == 7 * 86400
    assert pruning(make_app(database_url, KOUDAI_OUTBOX_KEEP=None)) == []
    with pytest.raises(ConfigError, match="KOUDAI_OUTBOX_KEEP = -1 must be a positive number"):
        make_app(database_url, KOUDAI_OUTBOX_KEEP=-1)
