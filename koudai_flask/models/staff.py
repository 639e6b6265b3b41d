"""Staff members, their role and channel scope, and the audit trail of what they did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from koudai_flask.models.base import Base, Timestamped


class StaffMember(Base, Timestamped):
    __tablename__ = "koudai_staff_member"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The host's user id when the host has Flask-Login, else "staff:<email>" for our login.
    user_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(40))
    # Channel names this member may act on; None means every channel.
    channels: Mapped[list[Any] | None]
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_staff_member.id"))
    active: Mapped[bool] = mapped_column(default=True)


class AuditEntry(Base, Timestamped):
    __tablename__ = "koudai_audit_entry"
    __table_args__ = (Index("ix_koudai_audit_entry_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
