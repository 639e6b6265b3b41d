"""What the category and product pages read: plain column values, not loaded models.

On the shop's two busiest pages, loading models (identity map, instance state, collections)
cost more than the query itself, and every column read costs as much again on each joined
row. These pages read the columns their templates show into small row objects that answer
what a template asks of a model: those columns, the model's own ``min_price``, ``cover``
and ``label`` rules, and the product's ``skus`` and ``images``. Any other attribute
(``sku.compare_at_price``, ``product.category``...) comes from the model rows, loaded on
first use, all of a product's SKUs (or images) in one query, so a host's own template sees
what the model would show.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import JSON, Select, Text, bindparam, cast, select

from koudai_flask.extension import get_state
from koudai_flask.models import (
    Category,
    LimitedPrice,
    Location,
    Product,
    ProductImage,
    Sku,
    StockLevel,
)
from koudai_flask.models.base import utcnow
from koudai_flask.read_path import read_rows
from koudai_flask.services.marketing.pricing import SpecialPrice


class ModelRow:
    """Column values of one row as attributes; any other attribute is the model row's."""

    model: ClassVar[type[Any]]

    def __init__(self, values: dict[str, Any], together: list[ModelRow] | None = None) -> None:
        # Plain instance attributes: a template reads them without a failed lookup first.
        self.__dict__.update(values)
        # The rows whose model rows are loaded with this one's (a product's SKUs).
        self.__dict__["_koudai_together"] = together

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not read columns, class attributes or properties.
        if name.startswith("__") or name.startswith("_koudai_"):
            raise AttributeError(name)
        return getattr(self.model_row(), name)

    def model_row(self) -> Any:
        """The model instance of this row, from the page's read session."""
        row = self.__dict__.get("_koudai_model_row")
        if row is None:
            rows = self.__dict__["_koudai_together"] or [self]
            ids = [other.__dict__["id"] for other in rows]
            session = get_state().read_session
            found = {
                r.id: r for r in session.scalars(select(self.model).where(self.model.id.in_(ids)))
            }
            for other in rows:
                other.__dict__["_koudai_model_row"] = found.get(other.__dict__["id"])
            row = self.__dict__["_koudai_model_row"]
            if row is None:
                raise AttributeError(f"{self.model.__name__} {self.__dict__['id']} is gone")
        return row

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.__dict__.get('id')}>"


class CategoryRow(ModelRow):
    model = Category


class ImageRow(ModelRow):
    model = ProductImage
    url: str  # where the image is served, set by the page that shows it


class SkuRow(ModelRow):
    """A SKU with ``available_here`` (on hand minus reserved at the page's location) and
    ``special``: its running limited-time price (the lowest), or None."""

    model = Sku
    label: property = vars(Sku)["label"]  # the model's own property, on these values


class ProductRow(ModelRow):
    """A product with its ``skus`` (by id) and ``images`` (by position), as on the model."""

    model = Product
    min_price: property = vars(Product)["min_price"]
    cover: property = vars(Product)["cover"]

    def __init__(self, values: dict[str, Any], skus: list[SkuRow], images: list[ImageRow]) -> None:
        super().__init__(values)
        # The listing-only expressions the model's rules look at first are not loaded here.
        self.listing_price: int | None = None
        self.cover_path: str | None = None
        self.skus = skus
        self.images = images


class _Columns:
    """The columns a page reads of one model, and how a row's cells become their values.

    JSON columns are read as text and decoded here, once per product or SKU: the product
    statement repeats a product's and a SKU's columns on every joined row, and the driver
    would decode them again on each.
    """

    def __init__(self, model: type[Any], prefix: str, keys: list[str]) -> None:
        self.keys = keys
        columns = [getattr(model, key) for key in keys]
        self.json_keys = [
            key for key, c in zip(keys, columns, strict=True) if isinstance(c.type, JSON)
        ]
        self.selected = [
            (cast(column, Text) if key in self.json_keys else column).label(prefix + key)
            for key, column in zip(keys, columns, strict=True)
        ]

    def values(self, cells: Sequence[Any]) -> dict[str, Any]:
        values = dict(zip(self.keys, cells, strict=True))
        for key in self.json_keys:
            if values[key] is not None:
                values[key] = json.loads(values[key])
        return values


_CATEGORY = _Columns(Category, "", ["id", "slug", "name", "parent_id", "position"])
_CATEGORY_BY_SLUG = select(*_CATEGORY.selected).where(Category.slug == bindparam("slug"))


def category(slug: str) -> CategoryRow | None:
    """The category with this slug, or None."""
    rows = read_rows(get_state().read_connection(), _CATEGORY_BY_SLUG, {"slug": slug})
    return CategoryRow(_CATEGORY.values(rows[0])) if rows else None


# What the product page shows; a SKU's or an image's product_id is the product's id.
_PRODUCT = _Columns(
    Product,
    "p_",
    [
        "id",
        "slug",
        "title",
        "description",
        "status",
        "options",
        "shipping_template_id",
        "review_count",
        "rating_total",
    ],
)
_SKU = _Columns(Sku, "s_", ["id", "code", "attributes", "price", "active"])
_IMAGE = _Columns(ProductImage, "i_", ["id", "path", "alt"])
# Where each model's cells sit in a row of the product statement.
_SKUS_AT = len(_PRODUCT.keys)
_IMAGES_AT = _SKUS_AT + len(_SKU.keys)
_AVAILABLE_AT = _IMAGES_AT + len(_IMAGE.keys)
_SPECIAL_AT = _AVAILABLE_AT + 1  # id, price, ends_at, name of a running limited price
_SKU_ID_AT = _SKUS_AT + _SKU.keys.index("id")
_IMAGE_ID_AT = _IMAGES_AT + _IMAGE.keys.index("id")


@functools.lru_cache(maxsize=8)
def _product_statement(location: str) -> Select[Any]:
    """Product, SKUs with their stock at ``location`` and running limited-time prices, and
    images, in one statement.

    Built once per location (the slug and the time are bound parameters). Rows are SKUs
    times images (times a SKU's running special prices, almost always none or one), ordered
    by SKU id then image position, as a joined eager load would fetch them.
    """
    location_id = select(Location.id).where(Location.code == location).scalar_subquery()
    now = bindparam("now", type_=LimitedPrice.starts_at.type)
    running = (
        (LimitedPrice.sku_id == Sku.id)
        & LimitedPrice.active.is_(True)
        & (LimitedPrice.starts_at <= now)
        & (LimitedPrice.ends_at > now)
    )
    return (
        select(
            *_PRODUCT.selected,
            *_SKU.selected,
            *_IMAGE.selected,
            StockLevel.on_hand - StockLevel.reserved,  # NULL: no stock level there
            LimitedPrice.id,
            LimitedPrice.price,
            LimitedPrice.ends_at,
            LimitedPrice.name,
        )
        .select_from(Product)
        .outerjoin(Sku, Sku.product_id == Product.id)
        .outerjoin(
            StockLevel, (StockLevel.sku_id == Sku.id) & (StockLevel.location_id == location_id)
        )
        .outerjoin(LimitedPrice, running)
        .outerjoin(ProductImage, ProductImage.product_id == Product.id)
        .where(Product.slug == bindparam("slug"))
        .order_by(Sku.id, ProductImage.position)
    )


def product(slug: str, location: str) -> ProductRow | None:
    """The product with this slug (whatever its status), or None."""
    connection = get_state().read_connection()
    rows = read_rows(connection, _product_statement(location), {"slug": slug, "now": utcnow()})
    if not rows:
        return None
    values = _PRODUCT.values(rows[0][:_SKUS_AT])
    product_id = values["id"]
    skus: dict[int, SkuRow] = {}
    images: dict[int, ImageRow] = {}  # the first SKU's rows hold every image, by position
    all_skus: list[ModelRow] = []
    all_images: list[ModelRow] = []
    specials: dict[int, tuple[int, int]] = {}  # SKU id -> (price, -id) of the special kept
    for row in rows:
        sku_id, image_id = row[_SKU_ID_AT], row[_IMAGE_ID_AT]
        if sku_id is not None and sku_id not in skus:
            sku = _SKU.values(row[_SKUS_AT:_IMAGES_AT])
            sku["product_id"] = product_id
            sku["available_here"] = row[_AVAILABLE_AT]
            sku["special"] = None
            skus[sku_id] = SkuRow(sku, all_skus)
            all_skus.append(skus[sku_id])
        special_id, price, ends_at, name = row[_SPECIAL_AT:]
        # The lowest running price wins; of equal prices, the newest (as at checkout).
        if special_id is not None and (price, -special_id) < specials.get(sku_id, (price + 1, 0)):
            specials[sku_id] = (price, -special_id)
            skus[sku_id].__dict__["special"] = SpecialPrice(price, ends_at, name)
        if image_id is not None and image_id not in images:
            image = _IMAGE.values(row[_IMAGES_AT:_AVAILABLE_AT])
            image["product_id"] = product_id
            images[image_id] = ImageRow(image, all_images)
            all_images.append(images[image_id])
    return ProductRow(values, list(skus.values()), list(images.values()))
