"""What the storefront keeps for buyers: carts, address books and the shop's profile."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
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
