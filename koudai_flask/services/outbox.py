"""Outbox events: written in the caller's transaction, turned into jobs after commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from koudai_flask.models import OutboxEvent
from koudai_flask.services.transaction import remember_outbox_event


def record(session: Session, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Add an event row to the current transaction; it is dispatched only if it commits."""
    event = OutboxEvent(topic=topic, payload=payload, status="pending")
    session.add(event)
    session.flush()
    remember_outbox_event(session, event.id)
    return event
