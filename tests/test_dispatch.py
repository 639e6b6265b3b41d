"""The job dispatcher: now with immediate retries (inline), or on RQ with its retry schedule."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from rq import SimpleWorker

from koudai_flask.jobs.dispatch import enqueue
from koudai_flask.jobs.queue import get_queue, job_class_for, redis_connection
from tests.sync_support import rq_config

pytestmark = pytest.mark.services_only

ran: list[str] = []


def note(name: str) -> None:
    """A job function: remember that it ran, inside which app."""
    from flask import current_app

    ran.append(f"{name}@{current_app.name}")


def fails_twice(name: str) -> None:
    ran.append(name)
    if len(ran) <= 2:
        raise ConnectionError("the remote end hung up")


def always_fails(name: str) -> None:
    ran.append(name)
    raise ConnectionError("the remote end is gone")


@pytest.fixture(autouse=True)
def no_calls() -> None:
    ran.clear()


def test_inline_retries_at_once_then_succeeds(app: Flask, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="koudai_flask.jobs"):
        enqueue(fails_twice, "push")
    assert ran == ["push"] * 3
    assert [r.getMessage() for r in caplog.records] == [
        "job fails_twice failed (attempt 1), retrying",
        "job fails_twice failed (attempt 2), retrying",
    ]


def test_inline_raises_after_its_retries_so_the_caller_keeps_its_event(app: Flask) -> None:
    with pytest.raises(ConnectionError, match="gone"):
        enqueue(always_fails, "push", retries=2)
    assert ran == ["push"] * 3


@pytest.fixture
def rq_app(make_app, database_url, redis_url) -> Flask:
    app = make_app(database_url, **rq_config(redis_url))  # a queue of its own
    with app.app_context():
        yield app


def test_on_rq_a_job_id_makes_a_second_enqueue_a_no_op(rq_app: Flask) -> None:
    enqueue(note, "first", job_id="push-7")
    enqueue(note, "second", job_id="push-7")
    enqueue(note, "other")
    queue = get_queue()
    jobs = [queue.fetch_job(job_id) for job_id in queue.job_ids]
    assert [job.args for job in jobs] == [("first",), ("other",)]
    assert jobs[0].id == f"{rq_app.config['KOUDAI_QUEUE_NAME']}-push-7"
    assert (jobs[0].retries_left, jobs[0].retry_intervals) == (3, [10, 60, 300])
    SimpleWorker([queue], connection=redis_connection(), job_class=job_class_for(rq_app)).work(
        burst=True
    )
    assert ran == [f"first@{rq_app.name}", f"other@{rq_app.name}"]
    enqueue(note, "third", job_id="push-7")  # the finished job is still there (its result)
    assert len(queue) == 0


def test_on_rq_no_retries_means_no_retry_schedule(rq_app: Flask) -> None:
    enqueue(note, "once", retries=0)
    (job,) = [get_queue().fetch_job(job_id) for job_id in get_queue().job_ids]
    assert job.retries_left is None
