"""Catalog: products with their SKU variants, categories, archiving."""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Integer, Select, String, bindparam, func, or_, select
from sqlalchemy.orm import Session

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Category, Product, ProductImage, Sku
from koudai_flask.models.catalog import Cover
from koudai_flask.read_path import read_rows
from koudai_flask.schemas import load
from koudai_flask.schemas.catalog import (
    CategoryInput,
    ProductInput,
    ProductUpdate,
    SkuInput,
    SkuUpdate,
)
from koudai_flask.services import catalog_events, inventory
from koudai_flask.services.transaction import current_session, unit_of_work

_product_input = ProductInput()
_product_update = ProductUpdate(partial=True)
_sku_input = SkuInput()
_sku_update = SkuUpdate(partial=True)
_category_input = CategoryInput()


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:100]
    return slug or "item"


def _unique_slug(session: Session, base: str) -> str:
    slug = base
    while session.scalar(select(Product.id).where(Product.slug == slug)) is not None:
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def _category(session: Session, slug: str | None) -> Category | None:
    if slug is None:
        return None
    category = session.scalar(select(Category).where(Category.slug == slug))
    if category is None:
        raise NotFound(f"unknown category {slug!r}")
    return category


def get_product(session: Session, slug_or_id: str | int) -> Product:
    if isinstance(slug_or_id, int):
        product = session.get(Product, slug_or_id)
    else:
        product = session.scalar(select(Product).where(Product.slug == slug_or_id))
    if product is None:
        raise NotFound(f"unknown product {slug_or_id!r}")
    return product


def create_category(
    name: str, slug: str, *, parent: str | None = None, position: int = 0
) -> Category:
    data = load(
        _category_input,
        {"name": name, "slug": slug, "parent": parent, "position": position},
        "category",
    )
    with unit_of_work() as session:
        if session.scalar(select(Category.id).where(Category.slug == data["slug"])):
            raise ValidationError(
                f"category {data['slug']!r} already exists",
                reason="category_taken",
                detail={"slug": data["slug"]},
            )
        parent_row = _category(session, data["parent"])
        category = Category(
            name=data["name"],
            slug=data["slug"],
            parent_id=parent_row.id if parent_row else None,
            position=data["position"],
        )
        session.add(category)
        session.flush()
        return category


def create_product(
    *,
    title: str,
    skus: list[dict[str, Any]],
    slug: str | None = None,
    description: str = "",
    category: str | None = None,
    options: list[str] | None = None,
    featured: bool = False,
    images: list[str] | None = None,
    source: str = "catalog",
) -> Product:
    """Create a product and its SKUs; a SKU's ``stock`` becomes its opening on-hand count.

    ``skus`` is ``[{"code", "price" (fen), "attributes": {"color": ..}, "barcode",
    "weight_grams", "stock"}]``. A duplicate SKU code raises ``ValidationError``.
    """
    data = load(
        _product_input,
        {
            "title": title,
            "skus": skus,
            "slug": slug,
            "description": description,
            "category": category,
            "options": options or [],
            "featured": featured,
            "images": images or [],
        },
        "product",
    )
    codes = [s["code"] for s in data["skus"]]
    if len(set(codes)) != len(codes):
        raise ValidationError(
            "SKU codes must be unique within a product",
            {"skus": codes},
            reason="sku_codes_repeated",
        )
    with unit_of_work() as session:
        taken = session.scalars(select(Sku.code).where(Sku.code.in_(codes))).all()
        if taken:
            raise ValidationError(
                f"SKU code {taken[0]!r} already exists",
                {"skus": list(taken)},
                reason="sku_code_taken",
                detail={"code": taken[0]},
            )
        if data["slug"] and session.scalar(select(Product.id).where(Product.slug == data["slug"])):
            raise ValidationError(
                f"product slug {data['slug']!r} already exists",
                reason="slug_taken",
                detail={"slug": data["slug"]},
            )
        category_row = _category(session, data["category"])
        product = Product(
            title=data["title"],
            slug=data["slug"] or _unique_slug(session, slugify(data["title"])),
            description=data["description"],
            category_id=category_row.id if category_row else None,
            options=data["options"],
            featured=data["featured"],
            status="active",
        )
        product.images = [
            ProductImage(path=path, alt=data["title"], position=i)
            for i, path in enumerate(data["images"])
        ]
        session.add(product)
        session.flush()
        for sku_data in data["skus"]:
            _add_sku(session, product, sku_data, source=source)
        catalog_events.touched(session, product.id, "created")
        return product


def _add_sku(session: Session, product: Product, data: dict[str, Any], *, source: str) -> Sku:
    missing = [name for name in product.options if name not in data["attributes"]]
    if missing:
        raise ValidationError(
            f"SKU {data['code']!r} lacks a value for {', '.join(missing)}",
            {"attributes": missing},
        )
    stock = data.pop("stock", 0)
    sku = Sku(product_id=product.id, **data)
    session.add(sku)
    session.flush()
    location = inventory.get_location(session)
    inventory.stock_level(session, sku, location)
    if stock:
        inventory.adjust(sku.code, stock, reason="adjustment", source=source, note="opening stock")
    return sku


def add_sku(product: str | int, sku: dict[str, Any], *, source: str = "catalog") -> Sku:
    data = load(_sku_input, sku, "SKU")
    with unit_of_work() as session:
        if session.scalar(select(Sku.id).where(Sku.code == data["code"])):
            raise ValidationError(
                f"SKU code {data['code']!r} already exists",
                reason="sku_code_taken",
                detail={"code": data["code"]},
            )
        row = get_product(session, product)
        catalog_events.touched(session, row.id, "updated")
        return _add_sku(session, row, data, source=source)


def update_product(product: str | int, **changes: Any) -> Product:
    data = load(_product_update, changes, "product")
    with unit_of_work() as session:
        row = get_product(session, product)
        if "category" in data:
            category_row = _category(session, data.pop("category"))
            row.category_id = category_row.id if category_row else None
        for key, value in data.items():
            setattr(row, key, value)
        session.flush()
        catalog_events.touched(session, row.id, "updated")
        return row


def update_sku(code: str, **changes: Any) -> Sku:
    data = load(_sku_update, changes, "SKU")
    with unit_of_work() as session:
        sku = inventory.get_sku(session, code)
        for key, value in data.items():
            setattr(sku, key, value)
        session.flush()
        catalog_events.touched(session, sku.product_id, "updated")
        return sku


def archive_product(product: str | int) -> Product:
    """Hide a product from the shop; its orders and stock history stay."""
    with unit_of_work() as session:
        row = get_product(session, product)
        row.status = "archived"
        session.flush()
        catalog_events.touched(session, row.id, "archived")
        return row


def active_products(
    *, category: str | None = None, limit: int = 20, offset: int = 0, featured: bool | None = None
) -> list[Product]:
    """Products on sale, newest first (the shop's listing)."""
    session = current_session()
    query = select(Product).where(Product.status == "active")
    if category is not None:
        category_row = _category(session, category)
        assert category_row is not None
        query = query.where(Product.category_id == category_row.id)
    if featured is not None:
        query = query.where(Product.featured.is_(featured))
    query = query.order_by(Product.created_at.desc(), Product.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query).all())


SORTS = ("newest", "price_asc", "price_desc", "sales")
MAX_QUERY_WORDS = 8


class ProductCard(NamedTuple):
    """A product as a listing shows it: plain values, no ORM object to build."""

    slug: str
    title: str
    min_price: int
    cover: Cover | None


def _listing_conditions(by_category: bool, words: int) -> list[ColumnElement[bool]]:
    """Which products a listing shows; values come as ``category_id`` and ``word_N`` params."""
    conditions = [Product.status == "active"]
    if by_category:
        category_id = bindparam("category_id", type_=Integer)
        children = select(Category.id).where(Category.parent_id == category_id)
        conditions.append(
            or_(Product.category_id == category_id, Product.category_id.in_(children))
        )
    for index in range(words):
        pattern = bindparam(f"word_{index}", type_=String)
        conditions.append(
            or_(
                func.lower(Product.title).like(pattern),
                func.lower(Product.description).like(pattern),
            )
        )
    return conditions


@functools.lru_cache(maxsize=len(SORTS) * 2 * (MAX_QUERY_WORDS + 1))
def _listing_statement(sort: str, by_category: bool, words: int) -> Select[Any]:
    """The listing's one statement for a shape of request, built once per process.

    Every request of a shape reuses one statement object, so SQLAlchemy finds its compiled
    SQL by a memoised cache key instead of building and hashing a new tree each time.
    """
    price = (
        select(func.min(Sku.price))
        .where(Sku.product_id == Product.id, Sku.active.is_(True))
        .correlate(Product)
        .scalar_subquery()
    )
    cover = (
        select(ProductImage.path)
        .where(ProductImage.product_id == Product.id)
        .order_by(ProductImage.position)
        .limit(1)
        .correlate(Product)
        .scalar_subquery()
    )
    order_by = {
        "newest": (Product.created_at.desc(), Product.id.desc()),
        "price_asc": (price.asc(), Product.id.desc()),
        "price_desc": (price.desc(), Product.id.desc()),
        "sales": (Product.sales_count.desc(), Product.id.desc()),
    }[sort]
    return (
        select(Product.slug, Product.title, func.coalesce(price, 0), cover, func.count().over())
        .where(*_listing_conditions(by_category, words))
        .order_by(*order_by)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


@functools.lru_cache(maxsize=2 * (MAX_QUERY_WORDS + 1))
def _total_statement(by_category: bool, words: int) -> Select[Any]:
    """How many products a listing has in all (asked only for a page past the last)."""
    return select(func.count()).select_from(Product).where(*_listing_conditions(by_category, words))


def listing(
    *,
    category: str | int | Category | None = None,
    query: str | None = None,
    sort: str = "newest",
    page: int = 1,
    per_page: int = 20,
) -> tuple[list[ProductCard], int]:
    """One page of products on sale (what a card shows) and how many there are in all.

    ``category`` is a slug, a category id or a ``Category`` (its subcategories' products
    are listed too). ``sort`` is newest, price_asc, price_desc (by the cheapest active SKU)
    or sales. ``query`` matches words of the title or description, case-insensitively.
    """
    if sort not in SORTS:
        raise ValidationError(f"sort must be one of {', '.join(SORTS)}")
    if page < 1:
        raise ValidationError("page starts at 1")
    if per_page < 1:
        raise ValidationError("per_page must be at least 1")
    from koudai_flask.extension import get_state

    state = get_state()
    params: dict[str, Any] = {"limit": per_page, "offset": (page - 1) * per_page}
    if isinstance(category, str):
        category_row = _category(state.read_session, category)
        assert category_row is not None
        params["category_id"] = category_row.id
    elif category is not None:
        params["category_id"] = category if isinstance(category, int) else category.id
    words = (query or "").split()[:MAX_QUERY_WORDS]
    for index, word in enumerate(words):
        params[f"word_{index}"] = f"%{word.lower()}%"
    shape = (category is not None, len(words))
    # Plain rows on the page's read connection: no ORM session, no entities to load.
    connection = state.read_connection()
    rows = read_rows(connection, _listing_statement(sort, *shape), params)
    if rows:
        cards = [
            ProductCard(slug, title, price, Cover(path, title) if path else None)
            for slug, title, price, path, _ in rows
        ]
        return cards, int(rows[0][4])
    return [], connection.scalar(_total_statement(*shape), params) or 0
