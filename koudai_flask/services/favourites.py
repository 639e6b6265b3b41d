"""A buyer's favourites (收藏): products they keep to come back to.

A signed-in buyer adds a product on sale from its page and takes it off there or from their
favourites page; adding it again, or taking off one that is not there, changes nothing. The
page lists them newest first with each one's price and whether it is still sold: a product
the shop archives stays listed as no longer sold, so the buyer sees it went. A buyer keeps
at most ``MAX_FAVOURITES``. The back office's product list counts how many buyers keep each
product, and a merge of two customers (``services.merges``) brings the favourites along.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Customer, Favourite, Product, Sku
from koudai_flask.services.transaction import current_session, unit_of_work

MAX_FAVOURITES = 200


@dataclass(frozen=True)
class FavouriteRow:
    """One favourite as the buyer's page lists it."""

    product_id: int
    slug: str
    title: str
    price: int  # fen, the lowest of its SKUs on sale
    on_sale: bool
    added_at: datetime


def _on_sale_product(slug: str) -> Product:
    product = current_session().scalar(select(Product).where(Product.slug == slug))
    if product is None or product.status != "active":
        raise NotFound(f"no product {slug!r} on sale", reason="not_on_sale")
    return product


def add(customer_id: int, slug: str) -> bool:
    """Keep the product ``slug`` (on sale) in the buyer's favourites; False if it was there.

    ``NotFound`` for a product not on sale, ``ValidationError`` (``favourite_limit``) for a
    buyer who keeps ``MAX_FAVOURITES`` already; nothing is written either way."""
    with unit_of_work() as session:
        product = _on_sale_product(slug)
        if session.get(Customer, customer_id) is None:
            raise NotFound(f"unknown customer {customer_id}")
        kept = session.scalar(
            select(Favourite.id).where(
                Favourite.customer_id == customer_id, Favourite.product_id == product.id
            )
        )
        if kept is not None:
            return False
        count = session.scalar(
            select(func.count()).select_from(Favourite).where(Favourite.customer_id == customer_id)
        )
        if (count or 0) >= MAX_FAVOURITES:
            raise ValidationError(
                f"customer {customer_id} keeps {MAX_FAVOURITES} favourites already",
                reason="favourite_limit",
                detail={"most": MAX_FAVOURITES},
            )
        try:
            with session.begin_nested():
                session.add(Favourite(customer_id=customer_id, product_id=product.id))
        except IntegrityError:  # the same buyer's second tab, a moment earlier
            return False
        return True


def remove(customer_id: int, product_id: int) -> bool:
    """Take a product off the buyer's favourites; False if it was not there."""
    with unit_of_work() as session:
        gone = session.execute(
            delete(Favourite).where(
                Favourite.customer_id == customer_id, Favourite.product_id == product_id
            )
        ).rowcount  # type: ignore[attr-defined]
        return bool(gone)


def kept(customer_id: int, product_id: int) -> bool:
    """Whether the buyer keeps this product (its page shows 已收藏)."""
    return (
        current_session().scalar(
            select(Favourite.id).where(
                Favourite.customer_id == customer_id, Favourite.product_id == product_id
            )
        )
        is not None
    )


def for_customer(customer_id: int) -> list[FavouriteRow]:
    """The buyer's favourites, newest first."""
    session = current_session()
    lowest = (
        select(Sku.product_id, func.min(Sku.price).label("price"))
        .where(Sku.active.is_(True))
        .group_by(Sku.product_id)
        .subquery()
    )
    rows = session.execute(
        select(Product, Favourite.created_at, lowest.c.price)
        .join(Favourite, Favourite.product_id == Product.id)
        .outerjoin(lowest, lowest.c.product_id == Product.id)
        .where(Favourite.customer_id == customer_id)
        .order_by(Favourite.created_at.desc(), Favourite.id.desc())
    ).all()
    return [
        FavouriteRow(
            product_id=product.id,
            slug=product.slug,
            title=product.title,
            price=int(price or 0),
            on_sale=product.status == "active" and price is not None,
            added_at=added_at,
        )
        for product, added_at, price in rows
    ]


def counts(product_ids: Iterable[int]) -> dict[int, int]:
    """How many buyers keep each of these products (the back office's product list)."""
    ids = list(product_ids)
    if not ids:
        return {}
    rows = current_session().execute(
        select(Favourite.product_id, func.count())
        .where(Favourite.product_id.in_(ids))
        .group_by(Favourite.product_id)
    )
    return {product_id: int(count) for product_id, count in rows}


__all__ = ["MAX_FAVOURITES", "FavouriteRow", "add", "counts", "for_customer", "kept", "remove"]
