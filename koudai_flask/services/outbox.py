"""Outbox events: written in the caller's transaction, turned into jobs after commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from koudai_flask.config import config_value
from koudai_flask.extension import get_state
from koudai_flask.models import OutboxEvent
from koudai_flask.models.base import utcnow
from koudai_flask.services.transaction import remember_outbox_event


def record(session: Session, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Add an event row to the current transaction; it is dispatched only if it commits."""
    if config_value("JOBS") == "inline" and not get_state().handlers.get(topic):
        # Inline delivery of an event nobody subscribed to only marks it done: do it now.
        event = OutboxEvent(topic=topic, payload=payload, status="done", done_at=utcnow())
        session.add(event)
        return event
    event = OutboxEvent(topic=topic, payload=payload, status="pending")
    session.add(event)
    session.flush()
    remember_outbox_event(session, event.id)
    return event
