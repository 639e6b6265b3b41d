"""CRM: merges of customers, verified identities, tags with their history, notes, segments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from koudai_flask.models.base import Base, Timestamped, utcnow


class IdentityVerification(Base):
    """An identity proven by its owner (an SMS code for a phone); strong enough to merge on."""

    __tablename__ = "koudai_identity_verification"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer_identity.id"), unique=True)
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerMerge(Base, Timestamped):
    """``source`` was folded into ``target``; ``moved`` lists the rows moved, for a split.

    While ``split_at`` is empty the source customer is a tombstone: hidden from lists,
    statistics and segments, and resolved to its target wherever it is looked up.
    """

    __tablename__ = "koudai_customer_merge"
    __table_args__ = (Index("ix_koudai_customer_merge_source_split", "source_id", "split_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"))
    target_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    # wechat_unionid | phone (automatic, on a strong key) | manual (staff)
    reason: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(80))
    moved: Mapped[dict[str, Any]]
    split_at: Mapped[datetime | None]
    split_by: Mapped[str | None] = mapped_column(String(80))


class Tag(Base, Timestamped):
    """A label on customers: set by hand (``rule`` empty) or computed from a rule."""

    __tablename__ = "koudai_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    # A rule in the language of services.tag_rules; None for a manual tag.
    rule: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    recomputed_at: Mapped[datetime | None]


class CustomerTag(Base, Timestamped):
    __tablename__ = "koudai_customer_tag"
    __table_args__ = (UniqueConstraint("customer_id", "tag_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("koudai_tag.id"), index=True)
    # manual | rule | the subsystem that set it (wechat, weibo, ...)
    source: Mapped[str] = mapped_column(String(20), default="manual")

    tag: Mapped[Tag] = relationship()


class TagHistory(Base, Timestamped):
    """Every tag added to or removed from a customer; keeps the name if the tag goes."""

    __tablename__ = "koudai_tag_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    tag: Mapped[str] = mapped_column(String(40))
    # added | removed
    action: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str | None] = mapped_column(String(80))


class CustomerNote(Base, Timestamped):
    __tablename__ = "koudai_customer_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    author: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)


class Segment(Base, Timestamped):
    """A saved filter over customers: a rule, plus the form fields it was built from."""

    __tablename__ = "koudai_segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    rule: Mapped[str] = mapped_column(Text)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
