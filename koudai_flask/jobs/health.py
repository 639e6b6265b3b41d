"""What a load balancer or a monitor asks of a shop: is its database there, is Redis there
(when jobs run on RQ), and how far behind is the outbox.

The answer carries figures only, never an error's text (a connection error names hosts and
users): the cause goes to the log, by its type.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from koudai_flask.config import config_value
from koudai_flask.models.base import utcnow
from koudai_flask.services import outbox_review

log = logging.getLogger("koudai_flask.jobs")


def report() -> tuple[dict[str, Any], bool]:
    """The health report, and whether every part it needs answered."""
    jobs = config_value("JOBS")
    body: dict[str, Any] = {"ok": True, "jobs": jobs, "database": "ok", "redis": None}
    try:
        health = outbox_review.health()
    except SQLAlchemyError as exc:
        log.error("health: the database did not answer (%s)", type(exc).__name__)
        body.update(ok=False, database="unreachable", outbox=None)
    else:
        oldest = health.oldest_waiting
        body["outbox"] = {
            "waiting": health.counts["pending"] + health.counts["enqueued"],
            "oldest_waiting_seconds": (
                None if oldest is None else max(0, int((utcnow() - oldest).total_seconds()))
            ),
            "dead": health.counts["dead"],
        }
    if jobs == "rq":
        from koudai_flask.jobs.queue import redis_connection

        try:
            redis_connection().ping()
        except RedisError as exc:
            log.error("health: Redis did not answer (%s)", type(exc).__name__)
            body.update(ok=False, redis="unreachable")
        else:
            body["redis"] = "ok"
    return body, bool(body["ok"])
