"""RQ wiring: the Redis connection, the queue and a Job class that runs inside the app."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app
from redis import Redis
from rq import Queue
from rq.job import Job

from koudai_flask.extension import get_state


class AppJob(Job):
    """An RQ job that runs its function inside the Flask app's context.

    ``job_class_for(app)`` makes a subclass bound to one app; workers use it, so job
    functions can call services, which read config and the session from ``current_app``.
    """

    flask_app: Flask | None = None
    creator_pid: int = 0

    def perform(self) -> Any:
        app = type(self).flask_app
        if app is None:
            raise RuntimeError("AppJob used without an app; use job_class_for(app)")
        if os.getpid() != type(self).creator_pid:
            # A work horse forked by the worker: the pool's connections belong to the parent
            # and must not be used here (SQLAlchemy's recipe for forked processes).
            get_state(app).get_engine().dispose(close=False)
        with app.app_context():
            return super().perform()


def job_class_for(app: Flask) -> type[AppJob]:
    state = get_state(app)
    if state.job_class is None:
        state.job_class = type(
            "KoudaiJob", (AppJob,), {"flask_app": app, "creator_pid": os.getpid()}
        )
    return state.job_class


def redis_connection(app: Flask | None = None) -> Redis:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state(app)
    if state.redis is None:
        state.redis = Redis.from_url(app.config["KOUDAI_REDIS_URL"])
    return state.redis


def get_queue(app: Flask | None = None) -> Queue:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return Queue(
        app.config["KOUDAI_QUEUE_NAME"],
        connection=redis_connection(app),
        job_class=job_class_for(app),
    )
