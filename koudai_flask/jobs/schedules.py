"""Periodic jobs: on RQ's cron scheduler in a worker, or piggy-backed on requests inline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask

from koudai_flask.jobs import tasks

log = logging.getLogger("koudai_flask.jobs")


def periodic_jobs(app: Flask) -> list[tuple[str, Callable[[], int], int]]:
    jobs: list[tuple[str, Callable[[], int], int]] = [
        (
            "koudai-expire-reservations",
            tasks.expire_reservations,
            app.config["KOUDAI_EXPIRY_INTERVAL"],
        ),
        ("koudai-outbox-relay", tasks.run_relay, app.config["KOUDAI_RELAY_INTERVAL"]),
    ]
    kuaidi100 = app.config["KOUDAI_KUAIDI100"]
    if kuaidi100 is not None:
        from koudai_flask.services.logistics import poll_due

        jobs.append(("koudai-kuaidi100-poll", poll_due, kuaidi100["poll_interval"]))
    return jobs


def start_cron_thread(app: Flask, stop: threading.Event) -> threading.Thread:
    """Enqueue the periodic jobs on RQ's ``CronScheduler`` from a daemon thread."""
    from rq.cron import CronScheduler

    from koudai_flask.jobs.queue import redis_connection

    scheduler = CronScheduler(connection=redis_connection(app), name=f"koudai-{app.name}")
    for name, func, interval in periodic_jobs(app):
        scheduler.register(func, app.config["KOUDAI_QUEUE_NAME"], interval=interval, name=name)

    def loop() -> None:
        while not stop.is_set():
            try:
                scheduler.enqueue_jobs()
            except Exception:
                log.exception("koudai cron: could not enqueue periodic jobs")
            stop.wait(max(1.0, scheduler.calculate_sleep_interval()))

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
                if now < self._next_run[name]:
                    continue
                self._next_run[name] = now + interval
            try:
                func()
            except Exception:
                log.exception("koudai: periodic job %s failed", name)
