"""Outbound webhooks: who wants which events, and every delivery made to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from koudai_flask.models.base import Base, Timestamped, utcnow


class WebhookSubscription(Base, Timestamped):
    """An HTTPS (or HTTP) endpoint that receives signed POSTs for the events it chose."""

    __tablename__ = "koudai_webhook_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Public event names, e.g. ["order.paid", "stock.changed"].
    events: Mapped[list[Any]] = mapped_column(default=list)
    # The signing secret, Fernet ciphertext keyed from SECRET_KEY (services.webhooks).
    secret_sealed: Mapped[str] = mapped_column(String(400))
    # The secret's last four characters, so staff can tell secrets apart without seeing them.
    secret_hint: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[datetime | None]
    # The staff user id of whoever created it: told when it is disabled.
    owner_user_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base, Timestamped):
    """One event to one subscription: its attempts so far and the last answer received."""

    __tablename__ = "koudai_webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_koudai_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("koudai_webhook_subscription.id"))
    # The stable event id sent as Koudai-Webhook-Id: "evt_<outbox event id>", or
    # "ping_<random>" for a test ping.
    event_id: Mapped[str] = mapped_column(String(64))
    # The public event name, e.g. "order.created".
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    # When the event happened (the "created_at" of the body; the same on every attempt).
    occurred_at: Mapped[datetime]
    # pending (waits for next_attempt_at) | sending | delivered | failed (given up)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(String(2000))
    duration_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
