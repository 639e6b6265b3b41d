"""``product.created``, ``product.updated`` and ``product.archived``: one outbox event per
product a service call changed, with the product as the whole call left it.

A back-office save changes the product, then each of its SKUs, in one transaction: a
subscriber (a webhook of a channel that lists the catalog) gets one event with the final
titles and prices, not one per step. Created beats archived beats updated when one call did
several. Stock is not here: ``stock.changed`` tells it.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import current_app, url_for
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from koudai_flask.models import Product
from koudai_flask.services import outbox
from koudai_flask.services.transaction import before_commit, before_commit_pending

KINDS = ("updated", "archived", "created")  # weakest first


def touched(session: Session, product_id: int, kind: str) -> None:
    """Product ``product_id`` was ``kind`` (one of :data:`KINDS`) in this transaction."""
    key = ("product_event", product_id)
    earlier = before_commit_pending(session, key)
    if isinstance(earlier, functools.partial):
        kind = max(kind, earlier.keywords["kind"], key=KINDS.index)
    before_commit(session, key, functools.partial(_record, product_id=product_id, kind=kind))


def _record(session: Session, *, product_id: int, kind: str) -> None:
    product = session.get(Product, product_id)
    if product is not None:
        outbox.record(session, f"product.{kind}", product_payload(product))


def product_payload(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.id,
        "slug": product.slug,
        "title": product.title,
        "description": product.description,
        "status": product.status,
        "category": product.category.slug if product.category is not None else None,
        "url": _absolute("koudai_shop.product", f"products/{product.slug}", slug=product.slug),
        "images": [
            {
                "path": image.path,
                "url": _absolute("koudai_shop.media", f"media/{image.path}", filename=image.path),
            }
            for image in sorted(product.images, key=lambda image: image.position)
        ],
        "skus": [
            {
                "sku": sku.code,
                "price": sku.price,
                "active": sku.active,
                "attributes": sku.attributes,
                "barcode": sku.barcode,
                "weight_grams": sku.weight_grams,
            }
            for sku in sorted(product.skus, key=lambda sku: sku.id)
        ],
    }


def _absolute(endpoint: str, path: str, **values: str) -> str:
    """An absolute shop URL: built from the request (or ``SERVER_NAME``), else
    ``KOUDAI_CAMPAIGN_LINK_BASE`` and the page's ``path`` under it; empty where neither can
    be had (a worker with neither, or a host that did not register the shop blueprint)."""
    try:
        return url_for(endpoint, **values, _external=True)
    except (RuntimeError, BuildError):
        base = current_app.config["KOUDAI_CAMPAIGN_LINK_BASE"]
        return f"{base.rstrip('/')}/{path}" if base else ""
