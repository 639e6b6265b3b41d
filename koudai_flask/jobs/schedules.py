"""Periodic jobs: on RQ's cron scheduler in a worker, or piggy-backed on requests inline."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from flask import Flask

from koudai_flask.jobs import tasks

log = logging.getLogger("koudai_flask.jobs")

CRON_LEASE = 30  # seconds a worker leads the periodic jobs after its last renewal
AUTO_COMPLETE_INTERVAL = 3600  # seconds: orders complete within an hour of their day


def periodic_jobs(app: Flask) -> list[tuple[str, Callable[[], int], int]]:
    jobs: list[tuple[str, Callable[[], int], int]] = [
        (
            "koudai-expire-reservations",
            tasks.expire_reservations,
            app.config["KOUDAI_EXPIRY_INTERVAL"],
        ),
        ("koudai-outbox-relay", tasks.run_relay, app.config["KOUDAI_RELAY_INTERVAL"]),
        ("koudai-sync-tick", tasks.sync_tick, app.config["KOUDAI_SYNC_INTERVAL"]),
        ("koudai-reconcile", tasks.reconcile_all, app.config["KOUDAI_RECONCILE_INTERVAL"]),
        (
            "koudai-crm-rule-tags",
            tasks.recompute_rule_tags,
            app.config["KOUDAI_CRM_RECOMPUTE_INTERVAL"],
        ),
    ]
    if app.config["KOUDAI_WEBHOOKS"]:
        from koudai_flask.jobs.webhooks import sweep

        jobs.append(("koudai-webhook-sweep", sweep, app.config["KOUDAI_WEBHOOKS_SWEEP_INTERVAL"]))
    from koudai_flask.jobs import campaigns

    jobs.append(("koudai-campaign-sweep", campaigns.sweep, app.config["KOUDAI_CAMPAIGN_INTERVAL"]))
    jobs.append(
        (
            "koudai-funnel-rollup",
            campaigns.rollup_funnel,
            app.config["KOUDAI_FUNNEL_ROLLUP_INTERVAL"],
        )
    )
    from koudai_flask.services.idempotency import PRUNE_INTERVAL

    jobs.append(("koudai-idempotency-prune", tasks.prune_idempotency_records, PRUNE_INTERVAL))
    if app.config["KOUDAI_AUTO_COMPLETE_AFTER"] is not None:
        jobs.append(("koudai-auto-complete", tasks.complete_overdue, AUTO_COMPLETE_INTERVAL))
    if app.config["KOUDAI_OUTBOX_KEEP"] is not None:
        from koudai_flask.services import outbox

        jobs.append(("koudai-outbox-prune", tasks.prune_outbox, outbox.PRUNE_INTERVAL))
    from koudai_flask.services import stock_alerts

    if stock_alerts.offered(app.config):  # some channel can tell buyers their SKU is back
        every = app.config["KOUDAI_STOCK_ALERT_INTERVAL"]
        jobs.append(("koudai-stock-alerts", stock_alerts.sweep, every))
    kuaidi100 = app.config["KOUDAI_KUAIDI100"]
    if kuaidi100 is not None:
        from koudai_flask.services.logistics import poll_due

        jobs.append(("koudai-kuaidi100-poll", poll_due, kuaidi100["poll_interval"]))
    weibo = app.config["KOUDAI_WEIBO"]
    if weibo is not None:
        from koudai_flask.services import weibo_monitor

        jobs.append(("koudai-weibo-poll", weibo_monitor.poll_due, weibo["poll_interval"]))
    return jobs


def start_cron_thread(app: Flask, stop: threading.Event) -> threading.Thread:
    """Enqueue the periodic jobs on RQ's ``CronScheduler`` from a daemon thread."""
    from rq.cron import CronScheduler

    from koudai_flask.jobs.queue import redis_connection

    redis = redis_connection(app)
    queue = app.config["KOUDAI_QUEUE_NAME"]
    scheduler = CronScheduler(connection=redis, name=f"koudai-{app.name}")
    for name, func, interval in periodic_jobs(app):
        scheduler.register(func, queue, interval=interval, name=name)
    # Every worker runs this thread; one of them (the holder of a short lease in Redis)
    # enqueues, so each periodic job runs once per interval, not once per worker.
    lease, token = f"{queue}:cron-leader", uuid.uuid4().hex

    def leading() -> bool:
        if redis.set(lease, token, nx=True, ex=CRON_LEASE):
            return True
        if redis.get(lease) == token.encode():
            redis.expire(lease, CRON_LEASE)
            return True
        return False

    def loop() -> None:
        while not stop.is_set():
            try:
                if leading():
                    scheduler.enqueue_jobs()
            except Exception:
                log.exception("koudai cron: could not enqueue periodic jobs")
            stop.wait(min(CRON_LEASE / 3, max(1.0, scheduler.calculate_sleep_interval())))

    thread = threading.Thread(target=loop, name="koudai-cron", daemon=True)
    thread.start()
    return thread


class InlineSchedule:
    """With ``KOUDAI_JOBS = "inline"`` there is no worker: run due jobs after a request."""

    def __init__(self, app: Flask) -> None:
        start = time.monotonic()
        self._next_run = {name: start + every for name, _, every in periodic_jobs(app)}
        self._lock = threading.Lock()

    def run_due(self, app: Flask) -> None:
        now = time.monotonic()
        for name, func, interval in periodic_jobs(app):
            with self._lock:
                # A job the config turned on since (a channel set up later) starts its
                # interval now rather than failing the request.
                if now < self._next_run.setdefault(name, now + interval):
                    continue
                self._next_run[name] = now + interval
            try:
                func()
            except Exception:
                log.exception("koudai: periodic job %s failed", name)


def start_inline_thread(app: Flask, stop: threading.Event, tick: float = 0.5) -> threading.Thread:
    """Inline jobs without requests to carry them: run the due periodic jobs from a thread.

    For a single-process site without Redis that must react on time (the demo pulls Taobao
    messages every second); with several processes each runs its own, which is harmless
    (every periodic job is safe to run twice) but wasteful: use RQ there.
    """
    schedule = InlineSchedule(app)

    def loop() -> None:
        while not stop.wait(tick):
            with app.app_context():
                schedule.run_due(app)

    thread = threading.Thread(target=loop, name="koudai-inline-schedule", daemon=True)
    thread.start()
    return thread
