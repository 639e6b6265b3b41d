"""Campaigns pushed to segments, their recipients, and the push-to-purchase funnel.

A ``Campaign`` is one message sent to a segment on one medium (WeChat template message,
SMS or e-mail); each customer it reaches is one ``CampaignRecipient`` row, unique per
campaign, whose status is the send's idempotency (a second run finds it sent).

``FunnelEvent`` rows are the raw steps (``push_sent``, ``push_clicked``, ``visit``,
``product_viewed``, ``cart_added``, ``checkout_started``, ``order_placed``,
``order_paid``), each with the sales channel it happened on, the campaign it is
attributed to and the customer or anonymous visitor. They are a log, so they carry plain
ids rather than foreign keys: a batch of buffered events never fails on one stale id.
``FunnelDaily`` holds the daily rollup, recomputed by a job.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from koudai_flask.models.base import Base, Timestamped, utcnow

# The funnel's steps, in order.
FUNNEL_STEPS = (
    "push_sent",
    "push_clicked",
    "visit",
    "product_viewed",
    "cart_added",
    "checkout_started",
    "order_placed",
    "order_paid",
)


class Campaign(Base, Timestamped):
    """One message to one segment on one medium, with a tracked link into the shop."""

    __tablename__ = "koudai_campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # The medium: wechat | sms | email (the notifications' channels).
    channel: Mapped[str] = mapped_column(String(16))
    # The CRM segment it goes to (resolved to recipients once, when sending starts).
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("koudai_segment.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # WeChat only: the template id registered in the Official Account's back end.
    wechat_template_id: Mapped[str | None] = mapped_column(String(64))
    # Where the tracked link leads: a path inside the shop ("/products/oxford-shirt").
    target: Mapped[str] = mapped_column(String(500), default="/")
    rate_per_minute: Mapped[int] = mapped_column(default=600)
    # draft | sending | sent
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # The shop's absolute URL the tracked links start with, fixed when sending starts.
    link_base: Mapped[str | None] = mapped_column(String(300))
    recipient_count: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CampaignRecipient(Base):
    """One customer of a campaign: what to send where, and whether it was sent."""

    __tablename__ = "koudai_campaign_recipient"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id"),
        Index("ix_koudai_campaign_recipient_batch", "campaign_id", "batch", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("koudai_campaign.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"))
    # The openid, phone number or e-mail address; "" when the customer has none (skipped).
    address: Mapped[str] = mapped_column(String(254), default="")
    # pending | sending | sent | failed | skipped
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Recipients are sent in numbered batches, each due at its time (the rate limit).
    batch: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]


class FunnelEvent(Base):
    """One step of a buyer's way from a message to a payment (see ``FUNNEL_STEPS``)."""

    __tablename__ = "koudai_funnel_event"
    __table_args__ = (Index("ix_koudai_funnel_event_occurred", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(String(20))
    # The sales channel's name ("web" is the own shop).
    channel: Mapped[str] = mapped_column(String(64), default="web")
    campaign_id: Mapped[int | None]
    customer_id: Mapped[int | None]
    # Who, for counting people: "c<customer id>" or "v<random>" for an anonymous visitor.
    visitor: Mapped[str] = mapped_column(String(40), default="")
    # What: a product slug, a SKU code or an order number.
    ref: Mapped[str] = mapped_column(String(64), default="")
    # Order total in fen, on order_placed and order_paid.
    amount: Mapped[int] = mapped_column(default=0)
    # Set on steps that happen once (a recipient's push, an order's payment): a replay
    # of the same step is dropped by this unique key.
    dedupe_key: Mapped[str | None] = mapped_column(String(80), unique=True)


class FunnelDaily(Base):
    """The funnel of one day (the shop's time zone), per campaign, channel and step.

    ``campaign_id`` 0 counts the steps attributed to no campaign.
    """

    __tablename__ = "koudai_funnel_daily"
    __table_args__ = (UniqueConstraint("day", "campaign_id", "channel", "event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date]
    campaign_id: Mapped[int] = mapped_column(default=0)
    channel: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(20))
    events: Mapped[int] = mapped_column(default=0)
    # Distinct visitors of that day.
    visitors: Mapped[int] = mapped_column(default=0)
    amount: Mapped[int] = mapped_column(default=0)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderAttribution(Base):
    """The campaign a shop order came from, written at checkout, read when it is paid."""

    __tablename__ = "koudai_order_attribution"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    campaign_id: Mapped[int]
    customer_id: Mapped[int | None]
    visitor: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
