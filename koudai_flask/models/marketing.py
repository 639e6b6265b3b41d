"""Marketing: coupons and their batches and redemptions, full-reduction promotions (满减),
limited-time prices, and the discount lines an order keeps.

Counters are columns updated by one conditional UPDATE (``used = used + 1 WHERE used <
limit``), so a coupon with 10 uses is redeemed 10 times however many checkouts race for it;
the check constraints are the last line of defence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from koudai_flask.models.base import Base, Timestamped, utcnow


class CouponBatch(Base, Timestamped):
    """Many single codes made at once with the same rules (a promotion's printed cards)."""

    __tablename__ = "koudai_coupon_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    size: Mapped[int]
    created_by: Mapped[str] = mapped_column(String(80), default="")

    coupons: Mapped[list[Coupon]] = relationship(back_populates="batch", order_by="Coupon.id")


class Coupon(Base, Timestamped):
    """One code a buyer types at checkout, with its rules and how often it was used."""

    __tablename__ = "koudai_coupon"
    __table_args__ = (
        CheckConstraint("kind IN ('fixed', 'percent')", name="kind_known"),
        CheckConstraint("value > 0", name="value_positive"),
        CheckConstraint("used >= 0", name="used_not_negative"),
        CheckConstraint("total_limit IS NULL OR used <= total_limit", name="used_within_limit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # "fixed": ``value`` fen off; "percent": ``value`` per cent off (1..99).
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[int]
    min_spend: Mapped[int] = mapped_column(default=0)  # fen, on the goods after special prices
    max_discount: Mapped[int | None]  # fen; caps a percent coupon
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    total_limit: Mapped[int | None]  # None: unlimited
    per_customer_limit: Mapped[int | None]  # None: unlimited (guests may use it)
    used: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_coupon_batch.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    batch: Mapped[CouponBatch | None] = relationship(back_populates="coupons")


class CouponCustomerUse(Base):
    """How often one customer used one coupon: the per-customer limit's counter."""

    __tablename__ = "koudai_coupon_customer_use"
    __table_args__ = (
        UniqueConstraint("coupon_id", "customer_id"),
        CheckConstraint("used >= 0", name="used_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("koudai_coupon.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    used: Mapped[int] = mapped_column(default=0)


class CouponRedemption(Base, Timestamped):
    """A coupon used by an order; ``released`` when the order was cancelled (use given back)."""

    __tablename__ = "koudai_coupon_redemption"
    __table_args__ = (UniqueConstraint("coupon_id", "order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("koudai_coupon.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_customer.id"))
    amount: Mapped[int]
    # redeemed | released
    status: Mapped[str] = mapped_column(String(10), default="redeemed")
    released_at: Mapped[datetime | None]


class Promotion(Base, Timestamped):
    """Full reduction (满减): spend at least a tier's threshold, get its amount off."""

    __tablename__ = "koudai_promotion"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # [{"threshold": fen, "off": fen}, ...], thresholds ascending.
    tiers: Mapped[list[Any]] = mapped_column(default=list)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LimitedPrice(Base, Timestamped):
    """A special price for one SKU between two times (限时折扣)."""

    __tablename__ = "koudai_limited_price"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("ends_at > starts_at", name="window_ordered"),
        Index("ix_koudai_limited_price_sku_window", "sku_id", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"))
    name: Mapped[str] = mapped_column(String(120), default="")
    price: Mapped[int]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OrderDiscount(Base):
    """One saving an order got, kept as the buyer saw it.

    ``scope`` "order" lines add up to ``Order.discount``; "line" lines (a limited-time
    price) are already in the lines' unit prices and are kept to show what was saved.
    """

    __tablename__ = "koudai_order_discount"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    plugin: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(8), default="order")
    code: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[int]
