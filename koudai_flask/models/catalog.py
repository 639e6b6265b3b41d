"""Catalog: categories, products, their SKUs and images, and shipping templates."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from koudai_flask.models.base import Base, Timestamped, utcnow

if TYPE_CHECKING:
    from koudai_flask.models.inventory import StockLevel


class Cover(NamedTuple):
    path: str
    alt: str


class Category(Base, Timestamped):
    __tablename__ = "koudai_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_category.id"))
    position: Mapped[int] = mapped_column(default=0)

    products: Mapped[list[Product]] = relationship(back_populates="category")


class ShippingTemplate(Base, Timestamped):
    """A shipping template (运费模板): what sending the products that name it costs.

    ``basis`` counts the goods by the piece or by weight in grams. The first ``first`` of
    them cost ``first_fee`` and each further ``additional`` (or part of it) costs
    ``additional_fee``, in fen; ``areas`` give other figures for some provinces
    (``[{"provinces": ["新疆", ...], "first": 1, "first_fee": 2000, "additional": 1,
    "additional_fee": 1000}]``), ``excluded`` names the provinces not delivered to, and the
    template's goods ship free from ``free_over`` fen.
    """

    __tablename__ = "koudai_shipping_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    basis: Mapped[str] = mapped_column(String(8), default="piece")
    first: Mapped[int] = mapped_column(default=1)
    first_fee: Mapped[int] = mapped_column(default=0)
    additional: Mapped[int] = mapped_column(default=1)
    additional_fee: Mapped[int] = mapped_column(default=0)
    free_over: Mapped[int | None] = mapped_column(default=None)
    areas: Mapped[list[Any]] = mapped_column(default=list)
    excluded: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Product(Base, Timestamped):
    __tablename__ = "koudai_product"
    __table_args__ = (Index("ix_koudai_product_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_category.id"), index=True)
    # "active" is on sale, "archived" is hidden from the shop but kept for old orders.
    status: Mapped[str] = mapped_column(String(16), default="active")
    featured: Mapped[bool] = mapped_column(default=False)
    # Names of the attributes its SKUs vary by, in display order, e.g. ["color", "size"].
    options: Mapped[list[Any]] = mapped_column(default=list)
    sales_count: Mapped[int] = mapped_column(default=0)
    # Published buyer reviews (评价) and the sum of their stars, kept with each review's
    # change, so a page shows the average without reading the reviews.
    review_count: Mapped[int] = mapped_column(default=0, server_default="0")
    rating_total: Mapped[int] = mapped_column(default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # None: the shop's flat fee (KOUDAI_SHIPPING_FEE).
    shipping_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("koudai_shipping_template.id"), index=True
    )

    category: Mapped[Category | None] = relationship(back_populates="products")
    shipping_template: Mapped[ShippingTemplate | None] = relationship()
    skus: Mapped[list[Sku]] = relationship(
        back_populates="product", order_by="Sku.id", cascade="all, delete-orphan"
    )
    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product", order_by="ProductImage.position", cascade="all, delete-orphan"
    )

    # Filled in by catalog.listing() from SQL, so that a card needs no SKUs loaded.
    listing_price: Mapped[int | None] = query_expression()
    # The first image's path, filled in by catalog.listing() the same way.
    cover_path: Mapped[str | None] = query_expression()

    @property
    def cover(self) -> Cover | None:
        if self.cover_path is not None:
            return Cover(self.cover_path, self.title)
        return Cover(self.images[0].path, self.images[0].alt) if self.images else None

    @property
    def min_price(self) -> int:
        if self.listing_price is not None:
            return self.listing_price
        return min((s.price for s in self.skus if s.active), default=0)


class Sku(Base, Timestamped):
    __tablename__ = "koudai_sku"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("weight_grams >= 0", name="weight_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("koudai_product.id"), index=True)
    # Attribute values keyed by the product's options, e.g. {"color": "red", "size": "M"}.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    price: Mapped[int]  # fen
    compare_at_price: Mapped[int | None]
    barcode: Mapped[str | None] = mapped_column(String(64), index=True)
    weight_grams: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    # Shown as low stock at or below this many available; None: the shop-wide default.
    low_stock_threshold: Mapped[int | None]

    # Filled in by the product page from SQL: on hand - reserved at the default location.
    available_here: Mapped[int | None] = query_expression()

    product: Mapped[Product] = relationship(back_populates="skus")
    stock_levels: Mapped[list[StockLevel]] = relationship(back_populates="sku")

    @property
    def label(self) -> str:
        return " / ".join(str(v) for v in self.attributes.values()) or self.code


class ProductImage(Base):
    __tablename__ = "koudai_product_image"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("koudai_product.id"), index=True)
    # Path inside KOUDAI_MEDIA_FOLDER, or an absolute http(s) URL.
    path: Mapped[str] = mapped_column(String(300))
    alt: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(default=0)

    product: Mapped[Product] = relationship(back_populates="images")

    __table_args__ = (UniqueConstraint("product_id", "position"),)
