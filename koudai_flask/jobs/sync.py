"""The sync engine: channel jobs on one RQ queue per channel, with the rules around failure.

- **Queues.** Each channel has its own queue (``<KOUDAI_QUEUE_NAME>-channel-<id>``), so a
  slow or throttled channel never holds up another; ``flask koudai worker`` listens to all of
  them (or to one channel's with ``--channel``).
- **Coalescing.** A job waiting in a queue stands for every later request of the same job:
  scheduling sets a Redis flag with ``SET NX`` and enqueues only if it was not set; the job
  clears the flag when it starts, so a change made while it runs schedules the next run. A
  burst of sales of one SKU thus becomes one push of the latest quantity.
- **One at a time per channel.** A job holds the channel's lock (a Redis lock that frees
  itself after ``KOUDAI_SYNC_LOCK_TIMEOUT``, so a killed worker cannot wedge a channel); two
  pushes can never overtake each other. A job that finds the lock taken is re-run shortly.
- **Failures** (``connectors.errors``): ``RateLimited`` waits what the channel asked,
  ``TemporaryFailure`` backs off exponentially (``KOUDAI_SYNC_RETRY_BASE`` doubling, at most
  5 minutes), ``AuthExpired`` renews the credentials once and retries, and a permanent
  failure, an expired credential that cannot be renewed, or ``KOUDAI_SYNC_MAX_ATTEMPTS``
  failed attempts make a dead letter (``services.sync_log``) that a person can requeue.
- **The database is the truth.** What still has to be pushed is marked on the bindings in the
  same transaction as the stock change, so Redis losing its data (or a worker dying mid-push)
  loses nothing: the periodic tick sweeps what is still marked and schedules it again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from flask import current_app
from rq import Queue

from koudai_flask.config import config_value
from koudai_flask.connectors.base import (
    EVENTS,
    FETCH_ORDERS,
    FETCH_SHIPMENTS,
    FETCH_STOCK,
    PUSH_MEMO,
    PUSH_ORDER,
    PUSH_SHIPMENT,
    PUSH_STOCK,
    Connector,
    connector_class,
    kinds_with,
)
from koudai_flask.connectors.errors import (
    AuthExpired,
    ConnectorError,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.jobs.sync_tasks import JOBS
from koudai_flask.models.base import utcnow
from koudai_flask.services import channel_memos, channels, stock_sync, sync_log
from koudai_flask.services.channels import ChannelInfo

log = logging.getLogger("koudai_flask.sync")

MAX_BACKOFF = 300.0
LOCK_WAIT = 2.0  # seconds a job waits for its channel's lock before it re-runs later
BUSY_DELAY = 1.0
_inline_locks: dict[tuple[str, int], threading.Lock] = {}
_inline_locks_guard = threading.Lock()


class ChannelBusy(Exception):
    """Another job of the same channel holds its lock."""


def queue_name(channel_id: int) -> str:
    return f"{config_value('QUEUE_NAME')}-channel-{channel_id}"


def channel_queue(channel_id: int) -> Queue:
    from koudai_flask.jobs.queue import job_class_for, redis_connection

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return Queue(
        queue_name(channel_id), connection=redis_connection(app), job_class=job_class_for(app)
    )


def _flag(channel_id: int, job: str, args: list[Any]) -> str:
    tail = ":".join(str(a) for a in args)
    return f"{config_value('QUEUE_NAME')}:sync-flag:{channel_id}:{job}:{tail}"


def build_connector(channel: ChannelInfo) -> Connector | None:
    cls = connector_class(channel.kind)
    if cls is None:
        return None
    secret = str(current_app.config.get("SECRET_KEY") or "")
    return cls(channel.name, channel.settings, secret_key=secret)


# -- scheduling ------------------------------------------------------------------------------


def schedule(channel_id: int, job: str, *args: Any, delay: float = 0.0, attempt: int = 0) -> bool:
    """Run a channel job soon; returns False when an identical job is already waiting."""
    if job not in JOBS:
        raise ValueError(f"unknown channel job {job!r}; known: {', '.join(sorted(JOBS))}")
    if config_value("JOBS") == "inline":
        run_channel_job(channel_id, job, list(args), attempt)
        return True
    from koudai_flask.jobs.queue import redis_connection

    redis = redis_connection()
    flag = _flag(channel_id, job, list(args))
    ttl = max(60, 2 * int(config_value("SYNC_LOCK_TIMEOUT")))
    if attempt == 0 and delay == 0 and not redis.set(flag, "1", nx=True, ex=ttl):
        return False  # one is waiting already: it will see this change too
    queue = channel_queue(channel_id)
    job_id = f"{queue.name}-{job}-{uuid.uuid4().hex[:12]}"
    arguments = (channel_id, job, list(args), attempt)
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), run_channel_job, *arguments, job_id=job_id)
    else:
        queue.enqueue(run_channel_job, *arguments, job_id=job_id)
    return True


@contextmanager
def channel_lock(channel_id: int) -> Iterator[None]:
    """One job at a time per channel (a Redis lock under RQ, a thread lock inline)."""
    if config_value("JOBS") == "inline":
        key = (config_value("QUEUE_NAME"), channel_id)
        with _inline_locks_guard:
            lock = _inline_locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=LOCK_WAIT):
            raise ChannelBusy(channel_id)
        try:
            yield
        finally:
            lock.release()
        return
    from koudai_flask.jobs.queue import redis_connection

    redis_lock = redis_connection().lock(
        f"{config_value('QUEUE_NAME')}:sync-lock:{channel_id}",
        timeout=config_value("SYNC_LOCK_TIMEOUT"),
        blocking_timeout=LOCK_WAIT,
    )
    if not redis_lock.acquire():
        raise ChannelBusy(channel_id)
    try:
        yield
    finally:
        try:
            redis_lock.release()
        except Exception:  # expired while we ran (a very slow job): nothing left to free
            log.warning("channel %s: sync lock expired before the job ended", channel_id)


# -- running ---------------------------------------------------------------------------------


def run_channel_job(channel_id: int, job: str, args: list[Any], attempt: int = 0) -> int:
    """An RQ job (or an inline call): run one channel job under the failure rules."""
    if config_value("JOBS") == "rq":
        from koudai_flask.jobs.queue import redis_connection

        redis_connection().delete(_flag(channel_id, job, args))
    try:
        channel = channels.info(channel_id)
    except NotFound:
        return 0  # the channel was deleted since
    connector = build_connector(channel)
    if connector is None or not channel.active:
        return 0
    try:
        with channel_lock(channel_id):
            done = JOBS[job](connector, channel, *args)
    except ChannelBusy:
        _again(channel_id, job, args, attempt, BUSY_DELAY)
        return 0
    except RateLimited as exc:
        _failed(channel, job, args, attempt, exc, delay=max(0.0, exc.retry_after), count=False)
        return 0
    except AuthExpired as exc:
        _auth_expired(connector, channel, job, args, attempt, exc)
        return 0
    except (TemporaryFailure, OSError) as exc:
        _failed(channel, job, args, attempt, exc, delay=backoff(attempt))
        return 0
    except KoudaiError as exc:  # PermanentFailure and every refusal of our own services
        _dead(channel, job, args, attempt, exc)
        return 0
    finally:
        connector.close()
    channels.record_sync(channel_id)
    return int(done or 0)


def backoff(attempt: int) -> float:
    return float(min(MAX_BACKOFF, config_value("SYNC_RETRY_BASE") * (2**attempt)))


def _again(channel_id: int, job: str, args: list[Any], attempt: int, delay: float) -> None:
    if config_value("JOBS") == "inline":
        return  # the periodic tick runs it again
    schedule(channel_id, job, *args, delay=delay, attempt=attempt)


def _failed(
    channel: ChannelInfo,
    job: str,
    args: list[Any],
    attempt: int,
    exc: Exception,
    *,
    delay: float,
    count: bool = True,
) -> None:
    next_attempt = attempt + 1 if count else attempt
    if next_attempt >= config_value("SYNC_MAX_ATTEMPTS"):
        _dead(channel, job, args, next_attempt, exc)
        return
    message = _describe(exc)
    log.warning("channel %s: %s failed (%s); retry in %.1f s", channel.name, job, message, delay)
    channels.record_sync(channel.id, error=message)
    _again(channel.id, job, args, next_attempt, delay)


def _auth_expired(
    connector: Connector,
    channel: ChannelInfo,
    job: str,
    args: list[Any],
    attempt: int,
    exc: AuthExpired,
) -> None:
    try:
        renewed = connector.renew_auth()
    except ConnectorError as renew_error:
        log.warning("channel %s: renewing credentials failed: %s", channel.name, renew_error)
        renewed = None
    if renewed and attempt + 1 < config_value("SYNC_MAX_ATTEMPTS"):
        channels.update_settings(channel.name, renewed)
        log.info("channel %s: credentials renewed, running %s again", channel.name, job)
        if config_value("JOBS") == "inline":
            run_channel_job(channel.id, job, args, attempt + 1)
        else:
            schedule(channel.id, job, *args, delay=0.01, attempt=attempt + 1)
        return
    channels.record_sync(channel.id, error=_describe(exc), status="auth_expired")
    _dead(channel, job, args, attempt + 1, exc, status="auth_expired")


def _dead(
    channel: ChannelInfo,
    job: str,
    args: list[Any],
    attempts: int,
    exc: Exception,
    *,
    status: str = "failing",
) -> None:
    message = _describe(exc)
    log.error("channel %s: %s gave up: %s", channel.name, job, message)
    channels.record_sync(channel.id, error=message, status=status)
    sync_log.record(
        channel.id,
        job,
        list(args),
        error_kind=type(exc).__name__,
        message=message,
        attempts=max(1, attempts),
    )


def _describe(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def requeue(failure_id: int, *, by: str) -> None:
    """Run a dead letter's job again (from the first attempt)."""
    channel_id, job, args = sync_log.take_for_requeue(failure_id, by=by)
    schedule(channel_id, job, *args)


# -- what sets jobs off: outbox events and the periodic tick ---------------------------------


def on_push_due(topic: str, payload: dict[str, Any]) -> None:
    """Outbox ``channel.push_due``: listings of these channels were marked in the change."""
    for channel_id in payload.get("channels", []):
        schedule(int(channel_id), "push_stock")


def on_order_paid(topic: str, payload: dict[str, Any]) -> None:
    """Outbox ``order.paid``: every ERP that takes orders gets this one (not its own)."""
    kinds = kinds_with(PUSH_ORDER)
    for channel in channels.all_channels(with_connector=True):
        if (
            channel.active
            and channel.kind in kinds
            and channel.name != payload.get("channel")
            and channel.settings.get("push_orders", True)
        ):
            schedule(channel.id, "push_order", payload["number"])


def on_order_shipped(topic: str, payload: dict[str, Any]) -> None:
    """Outbox ``order.shipped``: a marketplace's order goes back to it as shipped."""
    try:
        channel = channels.info(str(payload.get("channel") or ""))
    except NotFound:
        return
    if channel.active and channel.kind in kinds_with(PUSH_SHIPMENT):
        schedule(channel.id, "push_shipment", payload["number"])


def on_order_memo_changed(topic: str, payload: dict[str, Any]) -> None:
    """Outbox ``order.memo_changed``: a memo changed here goes to the order's channel."""
    if not payload.get("push"):
        return  # the channel's own change, or an order no channel keeps memos of
    try:
        channel = channels.info(str(payload.get("channel") or ""))
    except NotFound:
        return
    if channel.active and channel.kind in kinds_with(PUSH_MEMO):
        schedule(channel.id, "push_memo", payload["number"])


def sync_tick() -> int:
    """The periodic pass over every linked channel; returns the jobs it scheduled."""
    from koudai_flask.connectors.erp.webhook import TOLERANCE
    from koudai_flask.services import receipts

    # A signed event older than the tolerance is refused as stale whatever its id, so a
    # receipt is needed for twice that long at most (services.receipts).
    receipts.prune(utcnow() - timedelta(seconds=2 * TOLERANCE))
    scheduled = 0
    # Coalescing makes this sweep free when a push is already waiting for the channel.
    stale_dirty = set(stock_sync.dirty_channels())
    for channel in channels.all_channels(with_connector=True):
        cls = connector_class(channel.kind)
        if cls is None or not channel.active or channel.status == "auth_expired":
            continue
        wanted: list[str] = []
        if EVENTS in cls.capabilities:
            wanted.append("poll_messages")
        if FETCH_ORDERS in cls.capabilities:
            wanted.append("import_orders")
        # Shipments before counts: a count taken after the ERP shipped must meet our order
        # already shipped, or its units would be missing twice until the next pull.
        if FETCH_SHIPMENTS in cls.capabilities:
            wanted.append("pull_shipments")
        if FETCH_STOCK in cls.capabilities and PUSH_STOCK not in cls.capabilities:
            wanted.append("pull_stock")
        if channel.id in stale_dirty and PUSH_STOCK in cls.capabilities:
            wanted.append("push_stock")
        for job in wanted:
            scheduled += int(schedule(channel.id, job))
        if PUSH_MEMO in cls.capabilities:
            # Memos changed here whose push was lost or waited out a pause (not dead letters).
            for number in channel_memos.pending_pushes(channel.id):
                scheduled += int(schedule(channel.id, "push_memo", number))
    return scheduled


def reconcile_all() -> int:
    """The periodic full reconcile of every linked channel that can be read."""
    scheduled = 0
    for channel in channels.all_channels(with_connector=True):
        cls = connector_class(channel.kind)
        if cls is not None and channel.active and FETCH_STOCK in cls.capabilities:
            scheduled += int(schedule(channel.id, "reconcile"))
    return scheduled


__all__ = [
    "backoff",
    "build_connector",
    "channel_queue",
    "on_order_memo_changed",
    "on_order_paid",
    "on_order_shipped",
    "on_push_due",
    "queue_name",
    "reconcile_all",
    "requeue",
    "run_channel_job",
    "schedule",
    "sync_tick",
]
