"""Run a job function now (inline mode) or on RQ (rq mode), with retries either way.

Job functions take plain values (ids, strings), never objects, and are safe to run twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rq import Retry

from koudai_flask.config import config_value

log = logging.getLogger("koudai_flask.jobs")


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    job_id: str | None = None,
    retries: int = 3,
    intervals: tuple[int, ...] = (10, 60, 300),
) -> None:
    """Run ``func(*args)`` as a background job.

    Inline: call it now; an exception is logged and re-raised after ``retries`` immediate
    attempts, so the caller (usually an outbox handler) keeps its event for the relay.
    RQ: enqueue it with RQ's retry schedule; ``job_id`` makes a second enqueue a no-op
    while the first job still exists.
    """
    if config_value("JOBS") == "inline":
        for attempt in range(retries + 1):
            try:
                func(*args)
                return
            except Exception:
                if attempt == retries:
                    raise
                log.warning("job %s failed (attempt %d), retrying", func.__name__, attempt + 1)
        return
    from rq.job import Job

    from koudai_flask.jobs.queue import get_queue, redis_connection

    if job_id is not None:
        job_id = f"{config_value('QUEUE_NAME')}-{job_id}"
        if Job.exists(job_id, connection=redis_connection()):
            return
    get_queue().enqueue(
        func,
        *args,
        job_id=job_id,
        retry=Retry(max=retries, interval=list(intervals)) if retries else None,
    )
