"""Sales channels (the own shop, WeChat, Weibo, Taobao shops, ERPs) and their bindings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from koudai_flask.models.base import Base, Timestamped, utcnow


class Channel(Base, Timestamped):
    __tablename__ = "koudai_channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # web | wechat | weibo | taobao | erp | a registered connector's kind
    kind: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    # ok | failing (the last job failed, retries pending) | auth_expired (an owner must re-link)
    status: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")
    last_sync_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None]

    listings: Mapped[list[ChannelListing]] = relationship(back_populates="channel")


class ChannelListing(Base, Timestamped):
    """A SKU's binding on a channel and the rule that decides how much of it shows there."""

    __tablename__ = "koudai_channel_listing"
    __table_args__ = (
        UniqueConstraint("channel_id", "sku_id"),
        UniqueConstraint("channel_id", "external_item_id", "external_sku_id"),
        CheckConstraint("share >= 0 AND share <= 1", name="share_fraction"),
        CheckConstraint("buffer >= 0", name="buffer_not_negative"),
        CheckConstraint("cap IS NULL OR cap >= 0", name="cap_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("koudai_channel.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"), index=True)
    external_item_id: Mapped[str] = mapped_column(String(64))
    external_sku_id: Mapped[str] = mapped_column(String(64), default="")
    share: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal(1))
    buffer: Mapped[int] = mapped_column(default=0)
    cap: Mapped[int | None]
    last_pushed_quantity: Mapped[int | None]
    last_seen_quantity: Mapped[int | None]
    last_synced_at: Mapped[datetime | None]
    # The remote item's modified time at its last import (catalog import skips what is not
    # newer); kept apart from last_synced_at, which every stock push moves.
    remote_modified: Mapped[datetime | None]
    # Set when our quantity for this listing may have changed and is not pushed yet; the push
    # job clears it only if ``push_version`` is still the one it read (no lost update).
    dirty_since: Mapped[datetime | None] = mapped_column(index=True)
    push_version: Mapped[int] = mapped_column(default=0, server_default="0")

    channel: Mapped[Channel] = relationship(back_populates="listings")


class SyncCursor(Base):
    """Where an incremental import of a channel stopped (e.g. the last trade modified time)."""

    __tablename__ = "koudai_sync_cursor"
    __table_args__ = (UniqueConstraint("channel_id", "stream"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("koudai_channel.id"))
    stream: Mapped[str] = mapped_column(String(40))
    position: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]


class ChannelOrder(Base):
    """An order binding: our order and its id on a channel, with the last sync time.

    ``direction`` is ``import`` for an order that came from the channel (a Taobao trade) and
    ``export`` for one we pushed there (a sale in an ERP).
    """

    __tablename__ = "koudai_channel_order"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        UniqueConstraint("channel_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("koudai_channel.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))
    remote_status: Mapped[str] = mapped_column(String(40), default="")
    remote_modified: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]
    shipment_pushed_at: Mapped[datetime | None]


class SyncFailure(Base, Timestamped):
    """A dead letter: a channel job that will not succeed by retrying, kept for a person."""

    __tablename__ = "koudai_sync_failure"
    __table_args__ = (Index("ix_koudai_sync_failure_status_channel", "status", "channel_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("koudai_channel.id"))
    job: Mapped[str] = mapped_column(String(40))
    arguments: Mapped[list[Any]]
    error_kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=1)
    # dead | requeued | discarded
    status: Mapped[str] = mapped_column(String(16), default="dead")
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(120))


class DriftRecord(Base):
    """A listing whose quantity on the channel differed from what its rule says."""

    __tablename__ = "koudai_drift_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("koudai_channel.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"))
    published: Mapped[int | None]
    expected: Mapped[int]
    repaired: Mapped[bool] = mapped_column(default=False)
    found_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelReceipt(Base):
    """An inbound message id we have already taken (replay refusal for signed callbacks)."""

    __tablename__ = "koudai_channel_receipt"
    __table_args__ = (UniqueConstraint("channel_id", "receipt_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("koudai_channel.id"))
    receipt_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
