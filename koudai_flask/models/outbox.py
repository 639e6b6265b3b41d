"""The transactional outbox: an event row written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from koudai_flask.models.base import Base, Timestamped


class OutboxEvent(Base, Timestamped):
    __tablename__ = "koudai_outbox_event"
    __table_args__ = (Index("ix_koudai_outbox_event_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # e.g. "stock.changed", "order.placed", "order.paid"
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    # pending (not yet enqueued) | enqueued (a job exists) | done (handled, acknowledged)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    enqueued_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
