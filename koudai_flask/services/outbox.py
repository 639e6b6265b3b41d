"""Outbox events: written in the caller's transaction, turned into jobs after commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from koudai_flask.extension import get_state
from koudai_flask.models import OutboxEvent
from koudai_flask.models.base import utcnow
from koudai_flask.services.transaction import remember_outbox_event, unit_of_work

PRUNE_BATCH = 5000  # events deleted per transaction by ``prune``
# Transactions per run: a first prune of a long history is spread over the hourly runs, so
# no run (inline, in a request's teardown) takes long.
PRUNE_BATCHES_PER_RUN = 10
PRUNE_INTERVAL = 3600  # seconds between two runs of the periodic prune
# Statuses no job will ever be sent for again (``services.outbox_review`` discards).
FINISHED = ("done", "discarded")


def needs_dispatch(topic: str) -> bool:
    """Whether a ``topic`` event must go to the job system after commit.

    Delivering an event nobody subscribed to would only mark it done, inline or on RQ (where
    it would also cost a job in the queue, ahead of the events that matter), so such an event
    is written done at once; anything else is written pending and handed over after commit.
    Subscribers are fixed when the app is initialised, so the answer cannot change later.
    """
    return bool(get_state().handlers.get(topic))


def record(session: Session, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Add an event row to the current transaction; it is dispatched only if it commits."""
    if not needs_dispatch(topic):
        event = OutboxEvent(topic=topic, payload=payload, status="done", done_at=utcnow())
        session.add(event)
        return event
    event = OutboxEvent(topic=topic, payload=payload, status="pending")
    session.add(event)
    session.flush()
    remember_outbox_event(session, event.id)
    return event


def event_row(topic: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The column values ``record`` would write, for a Core insert of several events.

    The caller inserts the row with ``RETURNING id`` and passes the id of every ``pending``
    one to ``remember_outbox_event``, as ``record`` does.
    """
    dispatch = needs_dispatch(topic)
    return {
        "topic": topic,
        "payload": payload,
        "status": "pending" if dispatch else "done",
        "attempts": 0,
        "enqueued_at": None,
        "done_at": None if dispatch else now,
        "last_error": None,
        "created_at": now,
    }


def prune(
    older_than: timedelta,
    *,
    batch: int = PRUNE_BATCH,
    max_batches: int = PRUNE_BATCHES_PER_RUN,
) -> int:
    """Delete the events handled (``done``) or discarded more than ``older_than`` ago;
    returns how many.

    Oldest first, ``batch`` rows per transaction and at most ``max_batches`` transactions,
    so no lock is held for long and a long history is worked off over several runs. Pending
    and enqueued events stay whatever their age: the relay still owes them a job; dead ones
    wait for a person (``services.outbox_review``). The
    periodic job ``koudai-outbox-prune`` runs it hourly with ``KOUDAI_OUTBOX_KEEP``.
    """
    cutoff = utcnow() - older_than
    total, runs = 0, 0
    # One status at a time: ``status = x ORDER BY id`` walks the (status, id) index in order.
    for status in FINISHED:
        while runs < max_batches:
            runs += 1
            with unit_of_work() as session:
                ids = session.scalars(
                    select(OutboxEvent.id)
                    .where(OutboxEvent.status == status, OutboxEvent.done_at < cutoff)
                    .order_by(OutboxEvent.id)
                    .limit(batch)
                ).all()
                if ids:
                    session.execute(
                        delete(OutboxEvent)
                        .execution_options(synchronize_session=False)
                        .where(OutboxEvent.id.in_(ids))
                    )
            total += len(ids)
            if len(ids) < batch:
                break
    return total
