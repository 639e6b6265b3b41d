"""Sales channels (the own shop, WeChat, Weibo, Taobao shops, ERPs) and their bindings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from koudai_flask.models.base import Base, Timestamped


class Channel(Base, Timestamped):
    __tablename__ = "koudai_channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # web | wechat | weibo | taobao | erp | a registered connector's kind
    kind: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)

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
