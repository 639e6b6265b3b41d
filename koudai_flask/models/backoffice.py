"""What the back office keeps: custom roles, internal notes, seller memos, tracking events,
notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from koudai_flask.models.base import Base, Timestamped, utcnow


class Role(Base, Timestamped):
    """A custom staff role: a rank and a set of permission codenames."""

    __tablename__ = "koudai_role"
    __table_args__ = (CheckConstraint("rank > 0 AND rank < 100", name="rank_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    rank: Mapped[int]
    permissions: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(80), default="system")


class OrderNote(Base, Timestamped):
    """A note staff keep on an order; buyers never see it."""

    __tablename__ = "koudai_order_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    author: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)


class OrderMemo(Base):
    """The seller's memo and flag on an order (卖家备注, 旗帜): one line and a colour that the
    order list shows and filters on, the same pair a Taobao trade carries and syncs both ways.
    Buyers never see it. Kept beside the order: placing an order writes none of this.

    ``push_pending`` is set when a change made here still has to reach the order's channel;
    ``version`` counts the changes, so a push clears ``push_pending`` only if nothing changed
    while it was on its way."""

    __tablename__ = "koudai_order_memo"
    __table_args__ = (
        CheckConstraint("flag >= 0 AND flag <= 5", name="flag_range"),
        Index("ix_koudai_order_memo_flag", "flag"),
    )

    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), primary_key=True)
    memo: Mapped[str] = mapped_column(Text, default="")
    flag: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)
    push_pending: Mapped[bool] = mapped_column(default=False)
    updated_by: Mapped[str] = mapped_column(String(80), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PackingSlip(Base):
    """An order's packing slip (发货单) was printed: when first and last, by whom, how often.

    Kept beside the order, not on it: placing an order writes none of this."""

    __tablename__ = "koudai_packing_slip"

    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), primary_key=True)
    first_printed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_printed_at: Mapped[datetime] = mapped_column(default=utcnow)
    printed_by: Mapped[str] = mapped_column(String(80))
    times: Mapped[int] = mapped_column(default=1)


class ShipmentLine(Base):
    """How much of an order line one shipment carried (partial shipments)."""

    __tablename__ = "koudai_shipment_line"
    __table_args__ = (
        UniqueConstraint("shipment_id", "order_line_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("koudai_shipment.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("koudai_order_line.id"))
    quantity: Mapped[int]


class TrackingEvent(Base):
    """One step of a parcel's journey, as the logistics provider reported it."""

    __tablename__ = "koudai_tracking_event"
    __table_args__ = (
        UniqueConstraint("shipment_id", "occurred_at", "context"),
        Index("ix_koudai_tracking_event_shipment_time", "shipment_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("koudai_shipment.id"))
    occurred_at: Mapped[datetime]
    context: Mapped[str] = mapped_column(String(500))
    location: Mapped[str] = mapped_column(String(120), default="")
    # Kuaidi100 state: 0 in transit, 1 picked up, 3 signed for, 5 out for delivery, ...
    state: Mapped[str] = mapped_column(String(8), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base, Timestamped):
    """One message to a buyer about an order event, on one channel: the notification log.

    ``occurrence`` tells apart the times one order has an event that can happen more than
    once: a partial refund's is its ``Refund`` id; every other event's is 0.
    """

    __tablename__ = "koudai_notification"
    __table_args__ = (
        UniqueConstraint("order_id", "event", "channel", "occurrence"),
        Index("ix_koudai_notification_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    # paid | shipped | delivered | refunded
    event: Mapped[str] = mapped_column(String(20))
    # wechat | sms | email
    channel: Mapped[str] = mapped_column(String(16))
    occurrence: Mapped[int] = mapped_column(default=0)
    recipient: Mapped[str] = mapped_column(String(254))
    # pending | sent | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]


class MessageTemplate(Base):
    """The words of one event's message on one channel, editable in the back office."""

    __tablename__ = "koudai_message_template"
    __table_args__ = (UniqueConstraint("event", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # WeChat only: the template id registered in the Official Account's back end.
    wechat_template_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CredentialCache(Base):
    """Short-lived credentials shared by every process (e.g. a WeChat access_token)."""

    __tablename__ = "koudai_credential_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    value: Mapped[str] = mapped_column(String(600))
    expires_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
