"""What the storefront keeps for buyers: carts, address books, favourites, alerts, reviews
and the shop's profile."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from koudai_flask.models.base import Base, Timestamped, utcnow


class CartLine(Base):
    """A signed-in buyer's cart line (a guest's cart lives in the session)."""

    __tablename__ = "koudai_cart_line"
    __table_args__ = (
        UniqueConstraint("customer_id", "sku_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"))
    quantity: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Address(Base, Timestamped):
    """An entry of a buyer's address book."""

    __tablename__ = "koudai_address"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(40), default="")
    city: Mapped[str] = mapped_column(String(40), default="")
    district: Mapped[str] = mapped_column(String(40), default="")
    street: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(12), default="")
    is_default: Mapped[bool] = mapped_column(default=False)

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "phone": self.phone,
            "province": self.province,
            "city": self.city,
            "district": self.district,
            "street": self.street,
            "postcode": self.postcode,
        }


class ShopProfile(Base):
    """The shop's own name, logo and colour, set by the owner; config gives the defaults."""

    __tablename__ = "koudai_shop_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(120))
    logo_path: Mapped[str | None] = mapped_column(String(300))
    primary_color: Mapped[str | None] = mapped_column(String(7))
    # Where buyers send the goods of a return (退货地址): {"name", "phone", "address"}.
    return_address: Mapped[dict[str, str] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StockAlert(Base, Timestamped):
    """A buyer asked to be told when a sold-out SKU is back (到货提醒).

    One per (SKU, buyer): asking again after being told arms the same row again. ``status``
    is ``waiting`` until the SKU is back, then ``sending`` while one job tells the buyer,
    then ``sent`` (on ``channel``) or ``failed`` (``last_error``)."""

    __tablename__ = "koudai_stock_alert"
    __table_args__ = (
        UniqueConstraint("sku_id", "customer_id"),
        Index("ix_koudai_stock_alert_status_sku", "status", "sku_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    # When the buyer last asked: a job's id carries it, so a row armed again is sent again.
    armed_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    # When a job last claimed it: a row still ``sending`` long after was left by a dead worker.
    claimed_at: Mapped[datetime | None]
    channel: Mapped[str | None] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    notified_at: Mapped[datetime | None]


class ProductReview(Base, Timestamped):
    """A buyer's review (评价) of an item they received: one per order line.

    ``published`` reviews show on the product's page and count in the product's
    ``review_count`` and ``rating_total``; staff may hide one (``hidden``) and show it again,
    and reply once (``reply``, changed by replying again)."""

    __tablename__ = "koudai_product_review"
    __table_args__ = (
        UniqueConstraint("order_line_id"),
        CheckConstraint("rating >= 1 AND rating <= 5", name="rating_range"),
        Index("ix_koudai_product_review_product_status", "product_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("koudai_product.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("koudai_order_line.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    rating: Mapped[int]
    body: Mapped[str] = mapped_column(String(500), default="")
    # What the buyer bought (the line's variant) and how the page names them ("李*").
    variant: Mapped[str] = mapped_column(String(200), default="")
    author: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(16), default="published")
    reply: Mapped[str] = mapped_column(String(500), default="")
    replied_at: Mapped[datetime | None]


class Favourite(Base):
    """A product a buyer keeps in their favourites (收藏), one row per buyer and product."""

    __tablename__ = "koudai_favourite"
    __table_args__ = (
        UniqueConstraint("customer_id", "product_id"),
        Index("ix_koudai_favourite_product_id", "product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("koudai_product.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
