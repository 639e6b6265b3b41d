"""The open platform: API keys with their scopes, and the replies kept for idempotent POSTs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from koudai_flask.models.base import Base, Timestamped
from koudai_flask.models.staff import StaffMember


class ApiKey(Base, Timestamped):
    """A key ``kd_<prefix>_<secret>``: only the prefix and a SHA-256 of the secret are kept.

    The key acts as its owner (a staff member) and never beyond the owner's permissions:
    what it may do is its scopes intersected with what the owner holds at the time of the
    call, within its own channel list when it has one.
    """

    __tablename__ = "koudai_api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    owner_id: Mapped[int] = mapped_column(ForeignKey("koudai_staff_member.id"), index=True)
    # Permission codenames (services.staff.PERMISSIONS) this key may use.
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    # Channel names limiting orders and stock; None: whatever the owner may see.
    channels: Mapped[list[Any] | None]
    created_by: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None]
    # Written at most once a minute per key, not on every request.
    last_used_at: Mapped[datetime | None]

    owner: Mapped[StaffMember] = relationship()


class IdempotencyRecord(Base, Timestamped):
    """The reply to a POST made with an ``Idempotency-Key``, replayed for the same key.

    A row is written ``pending`` before the request runs (the unique constraint makes a
    concurrent duplicate wait for it) and ``done`` with the reply once it ran.
    """

    __tablename__ = "koudai_idempotency_record"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("koudai_api_key.id"))
    key: Mapped[str] = mapped_column(String(160))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    # SHA-256 of the request body: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    # pending | done
    status: Mapped[str] = mapped_column(String(8), default="pending")
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None]
