"""Browsing: the shop home, listings by category, search, product pages and images."""

from __future__ import annotations

import functools
import json
import os
from typing import NamedTuple
from urllib.parse import quote

from flask import Blueprint, abort, current_app, render_template, request, send_from_directory
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from koudai_flask import identity
from koudai_flask.blueprints.shop import catalog_reads
from koudai_flask.blueprints.shop.catalog_reads import CategoryRow
from koudai_flask.blueprints.shop.chrome import shop_links
from koudai_flask.blueprints.shop.common import page_number, per_page
from koudai_flask.blueprints.shop.forms import AddToCartForm, form_token, lazy_form
from koudai_flask.models import Category
from koudai_flask.models.catalog import Cover
from koudai_flask.services import catalog, favourites, freight, stock_alerts
from koudai_flask.services.transaction import current_session


def media_folder() -> str:
    folder = current_app.config["KOUDAI_MEDIA_FOLDER"]
    return folder or os.path.join(current_app.instance_path, "koudai-media")


class ListedProduct(NamedTuple):
    """A listing's card with its links, made once per page rather than once per card."""

    slug: str
    title: str
    min_price: int
    cover: Cover | None
    url: str
    image_url: str | None


# Slugs and image paths recur on every page view; quoting each once per process is enough.
_quote = functools.lru_cache(maxsize=4096)(quote)


def image_url(path: str, media_prefix: str) -> str:
    """An image's URL: an absolute http(s) path as it is, else under the shop's media."""
    if path.startswith(("http://", "https://")):
        return path
    return media_prefix + _quote(path)


def with_links(cards: list[catalog.ProductCard]) -> list[ListedProduct]:
    """The cards of one page with the product page's and the cover's URL of each."""
    links = shop_links()
    listed = []
    for slug, title, min_price, cover in cards:
        cover_url = None if cover is None else image_url(cover.path, links.media_prefix)
        listed.append(
            ListedProduct(
                slug, title, min_price, cover, links.product_prefix + _quote(slug), cover_url
            )
        )
    return listed


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
            "koudai/shop/index.html",
            categories=categories,
            featured=featured,
            newest=with_links(newest),
        )

    def listing_page(*, category: CategoryRow | None, query: str | None) -> ResponseReturnValue:
        sort, page = _sort(), page_number()
        products, total = catalog.listing(
            category=category.id if category is not None else None,
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
            products=with_links(products),
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
        row = catalog_reads.category(slug)
        if row is None:
            abort(404)
        return listing_page(category=row, query=None)

    @bp.get("/search")
    def search() -> ResponseReturnValue:
        query = request.args.get("q", "").strip()[:100]
        return listing_page(category=None, query=query)

    @bp.get("/products/<slug>")
    def product(slug: str) -> ResponseReturnValue:
        row = catalog_reads.product(slug, current_app.config["KOUDAI_DEFAULT_LOCATION"])
        if row is None or row.status != "active":
            abort(404)
        media_prefix = shop_links().media_prefix
        for image in row.images:  # the gallery's macro uses a ready URL when there is one
            image.url = image_url(image.path, media_prefix)
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
        # The merchant's order (S M L XL, not L M S XL): values as the SKUs first name them.
        values = {
            option: list(dict.fromkeys(str(s.attributes.get(option, "")) for s in skus))
            for option in row.options
        }
        first_in_stock = next((s.code for s in skus if stock.get(s.id, 0) > 0), None)
        # Sold-out SKUs offer 到货提醒 when some channel can tell the buyer; a signed-in
        # buyer sees which of them they already wait for.
        sold_out = [s for s in skus if stock.get(s.id, 0) <= 0] if stock_alerts.offered() else []
        customer = identity.current_customer()
        awaited = (
            stock_alerts.awaited(customer.id, [s.id for s in sold_out])
            if customer and sold_out
            else set()
        )
        return render_template(
            "koudai/shop/product.html",
            product=row,
            skus=skus,
            stock=stock,
            specials={s.id: s.special for s in skus if s.special is not None},
            option_values=values,
            variants_json=json.dumps(variants, ensure_ascii=False),
            form=lazy_form(lambda: AddToCartForm(sku=first_in_stock, quantity=1)),
            chosen_sku=first_in_stock,
            form_token=form_token(),
            shipping=freight.offer(row.shipping_template_id),
            sold_out=sold_out,
            awaited=awaited,
            # A signed-in buyer's 收藏 shows whether they keep it (a guest's asks to log in).
            favourite=favourites.kept(customer.id, row.id) if customer else False,
        )

    @bp.get("/media/<path:filename>")
    def media(filename: str) -> ResponseReturnValue:
        return send_from_directory(media_folder(), filename, max_age=86400)
