"""Turning committed outbox rows into work: inline, or as RQ jobs, and the relay.

The database is the truth. An event is ``pending`` until a job for it exists, ``enqueued``
while the job is queued or running, and ``done`` once its handlers ran. Redis may restart
empty or refuse a connection: the relay finds events whose job is gone and enqueues them
again, and delivery is idempotent, so an event is handled once however often it is sent.
An event whose handlers failed ``MAX_ATTEMPTS`` times is ``dead``, its last error kept, until
a person sends it again or discards it (``services.outbox_review``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from redis.exceptions import RedisError
from rq import Retry
from rq.job import Job, JobStatus
from sqlalchemy import case, select, update

from koudai_flask.config import config_value
from koudai_flask.extension import get_state
from koudai_flask.models import OutboxEvent
from koudai_flask.models.base import utcnow
from koudai_flask.services.transaction import current_session

log = logging.getLogger("koudai_flask.jobs")

MAX_ATTEMPTS = 8


def job_id(event_id: int) -> str:
    """RQ job ids are global to a Redis: name them by queue, one queue per shop database."""
    return f"{config_value('QUEUE_NAME')}-outbox-{event_id}"


def deliver_event(event_id: int) -> str:
    """Run the handlers subscribed to one event's topic, then acknowledge it (a job)."""
    session = current_session()
    event = session.get(OutboxEvent, event_id)
    if event is None:
        return "missing"
    if event.status == "done":
        return "already done"
    topic, payload = event.topic, dict(event.payload)
    session.rollback()  # hold no transaction while handlers run
    for handler in get_state().handlers.get(topic, []):
        handler(topic, payload)
    session.execute(
        update(OutboxEvent)
        .execution_options(synchronize_session=False)
        .where(OutboxEvent.id == event_id, OutboxEvent.status != "done")
        .values(status="done", done_at=utcnow(), last_error=None)
    )
    session.commit()
    return "done"


def dispatch_outbox(event_ids: Iterable[int]) -> None:
    """Hand just-committed events to the job system; failures are left for the relay."""
    ids = list(event_ids)
    if config_value("JOBS") == "inline":
        for event_id in ids:
            _deliver_inline(event_id)
        return
    try:
        queued = _run_dispatch_time_events(ids)
        _enqueue([event_id for event_id in ids if event_id not in queued])
    except RedisError as exc:
        log.warning(
            "outbox: Redis unavailable (%s); the relay will send %d event(s)",
            type(exc).__name__,
            len(ids),
        )


def _run_dispatch_time_events(ids: list[int]) -> set[int]:
    """Deliver now the events whose handlers only enqueue channel jobs (``handlers``)."""
    from koudai_flask.jobs.handlers import DISPATCH_TIME_TOPICS

    session = current_session()
    now = set(
        session.scalars(
            select(OutboxEvent.id).where(
                OutboxEvent.id.in_(ids), OutboxEvent.topic.in_(sorted(DISPATCH_TIME_TOPICS))
            )
        )
    )
    session.rollback()
    for event_id in sorted(now):
        _deliver_inline(event_id)
    return now


def _deliver_inline(event_id: int) -> None:
    try:
        deliver_event(event_id)
    except Exception as exc:  # a handler failed: keep the event for the relay
        log.exception("outbox: event %s failed inline", event_id)
        session = current_session()
        session.rollback()
        spent = OutboxEvent.attempts + 1 >= MAX_ATTEMPTS
        dead = session.execute(
            update(OutboxEvent)
            .execution_options(synchronize_session=False)
            .where(OutboxEvent.id == event_id, OutboxEvent.status == "pending")
            .values(
                attempts=OutboxEvent.attempts + 1,
                last_error=repr(exc)[:500],
                status=case((spent, "dead"), else_=OutboxEvent.status),
            )
            .returning(OutboxEvent.status)
        ).scalar()
        session.commit()
        if dead == "dead":
            _log_dead(event_id)


def _enqueue(ids: list[int]) -> None:
    from koudai_flask.jobs.queue import get_queue

    queue = get_queue()
    session = current_session()
    for event_id in ids:
        queue.enqueue(
            deliver_event,
            event_id,
            job_id=job_id(event_id),
            retry=Retry(max=3, interval=[10, 60, 300]),
            description=f"koudai outbox event {event_id}",
        )
        session.execute(
            update(OutboxEvent)
            .execution_options(synchronize_session=False)
            .where(OutboxEvent.id == event_id, OutboxEvent.status == "pending")
            .values(status="enqueued", enqueued_at=utcnow(), attempts=OutboxEvent.attempts + 1)
        )
        session.commit()


def relay_outbox(*, grace: int | None = None) -> int:
    """Send what was never enqueued, and again what Redis lost; returns events sent."""
    session = current_session()
    batch = config_value("OUTBOX_BATCH")
    if config_value("JOBS") == "inline":
        # Left pending by a release that did not mark them dead yet.
        spent = (
            session.execute(
                update(OutboxEvent)
                .execution_options(synchronize_session=False)
                .where(OutboxEvent.status == "pending", OutboxEvent.attempts >= MAX_ATTEMPTS)
                .values(status="dead")
                .returning(OutboxEvent.id)
            )
            .scalars()
            .all()
        )
        session.commit()
        for event_id in spent:
            _log_dead(event_id)
        pending = session.scalars(
            select(OutboxEvent.id)
            .where(OutboxEvent.status == "pending", OutboxEvent.attempts < MAX_ATTEMPTS)
            .order_by(OutboxEvent.id)
            .limit(batch)
        ).all()
        session.rollback()
        for event_id in pending:
            _deliver_inline(event_id)
        return len(pending)

    from koudai_flask.jobs.queue import redis_connection

    grace = config_value("RELAY_GRACE") if grace is None else grace
    cutoff = utcnow() - timedelta(seconds=grace)
    candidates = session.execute(
        select(OutboxEvent.id, OutboxEvent.status, OutboxEvent.attempts)
        .where(
            (OutboxEvent.status == "pending")
            | ((OutboxEvent.status == "enqueued") & (OutboxEvent.enqueued_at <= cutoff))
        )
        .order_by(OutboxEvent.id)
        .limit(batch)
    ).all()
    session.rollback()
    connection = redis_connection()
    resend: list[int] = []
    for event_id, status, attempts in candidates:
        job = (
            Job.fetch(job_id(event_id), connection=connection)
            if Job.exists(job_id(event_id), connection=connection)
            else None
        )
        if job is not None and job.get_status() not in (
            JobStatus.FAILED,
            JobStatus.STOPPED,
            JobStatus.CANCELED,
        ):
            if status == "pending":  # enqueued, but the mark was lost
                _mark_enqueued(event_id)
            continue
        error = _job_error(job) if job is not None else None
        if job is not None:
            job.delete()
        if attempts >= MAX_ATTEMPTS:
            _mark_dead(event_id, error)
            continue
        _reset_pending(event_id, error)
        resend.append(event_id)
    if resend:
        _enqueue(resend)
    return len(resend)


def _mark_enqueued(event_id: int) -> None:
    session = current_session()
    session.execute(
        update(OutboxEvent)
        .execution_options(synchronize_session=False)
        .where(OutboxEvent.id == event_id, OutboxEvent.status == "pending")
        .values(status="enqueued", enqueued_at=utcnow())
    )
    session.commit()


def _job_error(job: Job) -> str | None:
    """The last line of the exception a failed job ended with (RQ keeps the traceback)."""
    result = job.latest_result()
    traceback = result.exc_string if result is not None else None
    lines = traceback.strip().splitlines() if traceback else []
    return lines[-1][:500] if lines else None


def _error_kept(error: str | None) -> dict[str, object]:
    # A job that left no traceback (stopped, or failed before it ran) keeps the last error.
    return {"last_error": error} if error else {}


def _reset_pending(event_id: int, error: str | None = None) -> None:
    session = current_session()
    session.execute(
        update(OutboxEvent)
        .execution_options(synchronize_session=False)
        .where(OutboxEvent.id == event_id, OutboxEvent.status != "done")
        .values(status="pending", **_error_kept(error))
    )
    session.commit()


def _mark_dead(event_id: int, error: str | None = None) -> None:
    session = current_session()
    session.execute(
        update(OutboxEvent)
        .execution_options(synchronize_session=False)
        .where(OutboxEvent.id == event_id, OutboxEvent.status != "done")
        .values(status="dead", **_error_kept(error))
    )
    session.commit()
    _log_dead(event_id)


def _log_dead(event_id: int) -> None:
    log.error(
        "outbox: event %s gave up after %d attempts; send it again or discard it on the "
        "back office's background jobs page or with `flask koudai outbox`",
        event_id,
        MAX_ATTEMPTS,
    )
