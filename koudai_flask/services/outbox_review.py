"""Outbox events that gave up, for a person to send again or discard.

An event is ``dead`` once its handlers failed ``jobs.outbox.MAX_ATTEMPTS`` times: a webhook
target down for days, a refund the provider kept refusing, a bug in a host's subscriber.
Nothing of it is lost: the row keeps its topic, payload and last error. Sending it again
starts its attempts over and hands it to the job system after commit, as a new event is;
discarding it marks it ``discarded`` (the hourly prune deletes it later, as a done event).
Both are audited. The back office's background jobs page and ``flask koudai outbox`` are
the two ways in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.models import OutboxEvent
from koudai_flask.models.base import utcnow
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session, remember_outbox_event, unit_of_work

# What is counted on the page. ``done`` is left out: it is most rows, pruned on a schedule.
WAITING = ("pending", "enqueued")
COUNTED = (*WAITING, "dead", "discarded")
SEND_AGAIN_LIMIT = 500  # dead events sent again by one "send every dead event"
LIST_LIMIT = 200  # dead events listed, newest first


class NotDead(KoudaiError):
    """The event is not dead (any more): it was sent again, handled or discarded meanwhile."""

    http_status = 409
    reason = "not_dead"

    def __init__(self, event_id: int, status: str) -> None:
        super().__init__(f"outbox event {event_id} is {status}, not dead: nothing to do")
        self.event_id = event_id
        self.status = status


@dataclass(frozen=True)
class DeadEvent:
    id: int
    topic: str
    payload: dict[str, Any]
    attempts: int
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class OutboxHealth:
    counts: dict[str, int]  # every status of COUNTED, zero included
    oldest_waiting: datetime | None  # created_at of the oldest pending or enqueued event


def health() -> OutboxHealth:
    """How many events wait, gave up or were discarded, and how old the oldest waiting is."""
    session = current_session()
    try:
        rows = session.execute(
            select(OutboxEvent.status, func.count())
            .where(OutboxEvent.status.in_(COUNTED))
            .group_by(OutboxEvent.status)
        ).all()
        oldest = session.scalar(
            select(func.min(OutboxEvent.created_at)).where(OutboxEvent.status.in_(WAITING))
        )
    finally:
        session.rollback()
    found = dict(rows)
    return OutboxHealth({status: int(found.get(status, 0)) for status in COUNTED}, oldest)


def dead_count() -> int:
    """Dead events, for the dashboard's warning."""
    session = current_session()
    try:
        return int(
            session.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status == "dead")
            )
            or 0
        )
    finally:
        session.rollback()


def dead_events(*, topic: str | None = None, limit: int = LIST_LIMIT) -> list[DeadEvent]:
    """Dead events, newest first; only ``topic``'s when given."""
    query = select(OutboxEvent).where(OutboxEvent.status == "dead")
    if topic:
        query = query.where(OutboxEvent.topic == topic)
    session = current_session()
    try:
        return [
            DeadEvent(e.id, e.topic, dict(e.payload), e.attempts, e.last_error, e.created_at)
            for e in session.scalars(query.order_by(OutboxEvent.id.desc()).limit(limit))
        ]
    finally:
        session.rollback()


def send_again(event_id: int, *, actor: str) -> None:
    """Start a dead event's attempts over; it is delivered (or queued) after commit."""
    with unit_of_work() as session:
        before = _dead(session, event_id)
        _revive(session, [event_id])
        staff.audit(actor, "outbox.send_again", "outbox_event", str(event_id), before, None)


def send_all_again(*, actor: str, topic: str | None = None) -> int:
    """Send every dead event again (``topic``'s only, when given), oldest first, at most
    ``SEND_AGAIN_LIMIT``; returns how many."""
    with unit_of_work() as session:
        query = select(OutboxEvent.id).where(OutboxEvent.status == "dead")
        if topic:
            query = query.where(OutboxEvent.topic == topic)
        ids = list(
            session.scalars(
                query.order_by(OutboxEvent.id).limit(SEND_AGAIN_LIMIT).with_for_update()
            )
        )
        if ids:
            _revive(session, ids)
            after = {"events": len(ids), "first": ids[0], "last": ids[-1], "topic": topic}
            staff.audit(actor, "outbox.send_all_again", "outbox_event", "dead", None, after)
        return len(ids)


def discard(event_id: int, *, actor: str, note: str = "") -> None:
    """Give a dead event up for good: it is never sent again."""
    with unit_of_work() as session:
        before = _dead(session, event_id)
        session.execute(
            update(OutboxEvent)
            .execution_options(synchronize_session=False)
            .where(OutboxEvent.id == event_id)
            .values(status="discarded", done_at=utcnow())
        )
        after = {"status": "discarded", "note": note.strip()[:200]}
        staff.audit(actor, "outbox.discard", "outbox_event", str(event_id), before, after)


def _dead(session: Any, event_id: int) -> dict[str, Any]:
    """The dead event's audit description, its row locked; NotFound or NotDead otherwise."""
    event = session.get(OutboxEvent, event_id, with_for_update=True, populate_existing=True)
    if event is None:
        raise NotFound(f"no outbox event {event_id}")
    if event.status != "dead":
        raise NotDead(event_id, event.status)
    return {
        "status": "dead",
        "topic": event.topic,
        "attempts": event.attempts,
        "last_error": event.last_error,
    }


def _revive(session: Any, event_ids: list[int]) -> None:
    session.execute(
        update(OutboxEvent)
        .execution_options(synchronize_session=False)
        .where(OutboxEvent.id.in_(event_ids))
        .values(status="pending", attempts=0, enqueued_at=None)
    )
    for event_id in event_ids:
        remember_outbox_event(session, event_id)
