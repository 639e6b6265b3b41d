"""Webhook jobs: the outbox subscriber, one job per delivery attempt, and the sweep.

Inline (``KOUDAI_JOBS = "inline"``) a delivery is attempted right after the event's commit
and its retries are sent by the periodic sweep when due. On RQ each attempt is a job; a
retry is enqueued for its due time (``enqueue_in``, run by the worker's scheduler) and the
sweep sends whatever Redis lost. The database is the truth: every delivery and its next
attempt time are rows, and a claimed attempt is never sent twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

from koudai_flask.config import config_value
from koudai_flask.models.base import utcnow
from koudai_flask.services import webhook_delivery

log = logging.getLogger("koudai_flask.webhooks")


def on_event(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler of every webhook topic: one delivery per subscriber, each sent."""
    for delivery_id in webhook_delivery.fan_out(topic, payload):
        schedule(delivery_id)


def send(delivery_id: int, now: datetime | None = None) -> str:
    """One attempt of one delivery (a job); schedules the next one when it failed."""
    outcome = webhook_delivery.attempt(delivery_id, now=now)
    if outcome.retry_in is not None and config_value("JOBS") == "rq":
        schedule(delivery_id, delay=outcome.retry_in, generation=str(outcome.attempts + 1))
    return outcome.status


def schedule(delivery_id: int, *, delay: float = 0.0, generation: str = "1") -> None:
    """Attempt a delivery now (inline) or as a job, after ``delay`` seconds on RQ.

    Inline, a delayed attempt is left to the sweep. On RQ a Redis failure is only logged:
    the delivery is a pending row, and the sweep enqueues it when it is due.
    """
    if config_value("JOBS") == "inline":
        if delay <= 0:
            send(delivery_id)
        return
    from rq.job import Job

    from koudai_flask.jobs.queue import get_queue, redis_connection

    job_id = f"{config_value('QUEUE_NAME')}-webhook-{delivery_id}-{generation}"
    try:
        if Job.exists(job_id, connection=redis_connection()):
            return
        queue = get_queue()
        description = f"koudai webhook delivery {delivery_id}"
        if delay > 0:
            queue.enqueue_in(
                timedelta(seconds=delay), send, delivery_id, job_id=job_id, description=description
            )
        else:
            queue.enqueue(send, delivery_id, job_id=job_id, description=description)
    except RedisError as exc:
        log.warning(
            "webhooks: Redis unavailable (%s); the sweep will send delivery %s",
            type(exc).__name__,
            delivery_id,
        )


def sweep(now: datetime | None = None) -> int:
    """Send (inline) or enqueue (RQ) every delivery whose attempt is due; returns how many."""
    ids = webhook_delivery.due(now)
    for delivery_id in ids:
        if config_value("JOBS") == "inline":
            send(delivery_id, now)
        else:
            schedule(delivery_id, generation=f"sweep-{(now or utcnow()).timestamp():.0f}")
    return len(ids)
