"""Browsing: the shop home, listings by category, search, product pages and images."""

from __future__ import annotations

import functools
import json
import os

from flask import Blueprint, abort, current_app, render_template, request, send_from_directory
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import joinedload

from koudai_flask.blueprints.shop.common import page_number, per_page
from koudai_flask.blueprints.shop.forms import AddToCartForm
from koudai_flask.extension import get_state
from koudai_flask.models import Category, Location, Product, Sku, StockLevel
from koudai_flask.services import catalog
from koudai_flask.services.transaction import current_session


def media_folder() -> str:
    folder = current_app.config["KOUDAI_MEDIA_FOLDER"]
    return folder or os.path.join(current_app.instance_path, "koudai-media")


@functools.lru_cache(maxsize=8)
def product_page_query(location: str) -> Select[Product]:
    """The product page's one statement, built once: product, SKUs with stock, images."""
    location_id = select(Location.id).where(Location.code == location).scalar_subquery()
    available = (
        select(StockLevel.on_hand - StockLevel.reserved)
        .where(StockLevel.sku_id == Sku.id, StockLevel.location_id == location_id)
        .scalar_subquery()
    )
    return (
        select(Product)
        .where(Product.slug == bindparam("slug"))
        .options(
            joinedload(Product.skus).with_expression(Sku.available_here, available),
            joinedload(Product.images),
        )
    )


def _sort() -> str:
    sort = request.args.get("sort", "newest")
    return sort if sort in catalog.SORTS else "newest"


def register(bp: Blueprint) -> None:
    @bp.get("/")
    def index() -> ResponseReturnValue:
        session = current_session()
        categories = session.scalars(
            select(Category).where(Category.parent_id.is_(None)).order_by(Category.position)
        ).all()
        featured = catalog.active_products(featured=True, limit=6)
        newest, _ = catalog.listing(sort="newest", per_page=per_page())
        return render_template(
            "koudai/shop/index.html", categories=categories, featured=featured, newest=newest
        )

    def listing_page(*, category: Category | None, query: str | None) -> ResponseReturnValue:
        sort, page = _sort(), page_number()
        products, total = catalog.listing(
            category=category,
            query=query,
            sort=sort,
            page=page,
            per_page=per_page(),
        )
        pages = max(1, -(-total // per_page()))
        if page > pages:
            abort(404)
        return render_template(
            "koudai/shop/listing.html",
            category=category,
            query=query,
            products=products,
            total=total,
            sort=sort,
            sorts=catalog.SORTS,
            page=page,
            pages=pages,
        )

    @bp.get("/products")
    def all_products() -> ResponseReturnValue:
        return listing_page(category=None, query=None)

    @bp.get("/c/<slug>")
    def category(slug: str) -> ResponseReturnValue:
        row = get_state().read_session.scalar(select(Category).where(Category.slug == slug))
        if row is None:
            abort(404)
        return listing_page(category=row, query=None)

    @bp.get("/search")
    def search() -> ResponseReturnValue:
        query = request.args.get("q", "").strip()[:100]
        return listing_page(category=None, query=query)

    @bp.get("/products/<slug>")
    def product(slug: str) -> ResponseReturnValue:
        row = get_state().read_session.scalar(
            product_page_query(current_app.config["KOUDAI_DEFAULT_LOCATION"]), {"slug": slug}
        )
        if row is None or row.status != "active":
            abort(404)
        stock = {s.id: s.available_here or 0 for s in row.skus}
        skus = [s for s in row.skus if s.active]
        variants = [
            {
                "code": s.code,
                "attributes": s.attributes,
                "price": s.price,
                "available": stock.get(s.id, 0),
            }
            for s in skus
        ]
        values = {
            option: sorted({str(s.attributes.get(option, "")) for s in skus})
            for option in row.options
        }
        first_in_stock = next((s.code for s in skus if stock.get(s.id, 0) > 0), None)
        form = AddToCartForm(sku=first_in_stock, quantity=1)
        return render_template(
            "koudai/shop/product.html",
            product=row,
            skus=skus,
            stock=stock,
            option_values=values,
            variants_json=json.dumps(variants, ensure_ascii=False),
            form=form,
        )

    @bp.get("/media/<path:filename>")
    def media(filename: str) -> ResponseReturnValue:
        return send_from_directory(media_folder(), filename, max_age=86400)
