"""Requests per API key per fixed window: in Redis (every process shares the count) or in
this process. Over the limit is ``RateLimited`` (429 with ``Retry-After``).

Redis failing does not take the API down with it: the request goes through and the failure
is logged once per window.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from flask import Flask, current_app
from redis.exceptions import RedisError

from koudai_flask.blueprints.api.errors import RateLimited
from koudai_flask.config import config_value

log = logging.getLogger(__name__)


class MemoryCounters:
    """Per-process window counters, one per app."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[tuple[int, int], int] = {}
        self.warned_slot = -1

    def hit(self, key_id: int, slot: int) -> int:
        with self.lock:
            if len(self.counts) > 10_000:  # drop finished windows now and then
                self.counts = {k: v for k, v in self.counts.items() if k[1] >= slot}
            count = self.counts.get((key_id, slot), 0) + 1
            self.counts[(key_id, slot)] = count
            return count


def counters(app: Flask) -> MemoryCounters:
    found = app.extensions.get("koudai_api_rate")
    if found is None:
        found = app.extensions.setdefault("koudai_api_rate", MemoryCounters())
    assert isinstance(found, MemoryCounters)
    return found


def _uses_redis() -> bool:
    storage = config_value("API_RATE_STORAGE")
    return storage == "redis" or (storage == "auto" and config_value("JOBS") == "rq")


def check(key_id: int) -> None:
    """Count one request of ``key_id``; raise ``RateLimited`` once the window is full."""
    limit: int = config_value("API_RATE_LIMIT")
    window: int = config_value("API_RATE_WINDOW")
    now = time.time()
    slot = int(now // window)
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    count = 0
    if _uses_redis():
        from koudai_flask.jobs.queue import redis_connection

        name = f"{config_value('QUEUE_NAME')}:api-rate:{key_id}:{slot}"
        try:
            pipe = redis_connection(app).pipeline()
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count = int(pipe.execute()[0])
        except RedisError as exc:
            state = counters(app)
            if state.warned_slot != slot:
                state.warned_slot = slot
                log.warning("API rate limit not enforced, Redis failed: %s", type(exc).__name__)
            return
    else:
        count = counters(app).hit(key_id, slot)
    if count > limit:
        raise RateLimited(max(1, math.ceil((slot + 1) * window - now)))
