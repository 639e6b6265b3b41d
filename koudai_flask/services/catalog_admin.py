"""Catalog, stock and message wording changed in the back office, for a named staff member.

As in :mod:`koudai_flask.services.backoffice`, every write takes the acting member's user
id first, checks the permission with ``staff.require`` and writes an ``AuditEntry`` with the
before and after in the same transaction. Money typed in yuan becomes integer fen exactly.

A product's SKUs form a matrix: every combination of its option values (colour × size) is
one SKU. Saving the matrix updates the SKUs whose code is kept, adds the new combinations
and deactivates the ones left out; a SKU is never deleted (orders and the ledger point at it).

The form's plain values and its SKU matrix are :mod:`koudai_flask.services.product_form`;
its names are importable from here as well.
"""

from __future__ import annotations

import io
import secrets
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from koudai_flask.errors import ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import Category, MessageTemplate, Product, ProductImage, Sku
from koudai_flask.services import catalog, inventory, shipping_templates, staff
from koudai_flask.services.inventory import StockSnapshot
from koudai_flask.services.product_form import (
    MAX_OPTIONS,
    MAX_SKUS,
    ProductDraft,
    SkuRow,
    attributes_key,
    code_prefix,
    fen_to_yuan,
    matrix_rows,
    sku_matrix,
    split_values,
    yuan_to_fen,
)
from koudai_flask.services.transaction import unit_of_work
from koudai_flask.storage import read_image

# -- catalog writes --------------------------------------------------------------------------


def _snapshot(product: Product) -> dict[str, Any]:
    return {
        "title": product.title,
        "description": product.description,
        "status": product.status,
        "featured": product.featured,
        "category": product.category.slug if product.category else None,
        "shipping_template": product.shipping_template.name if product.shipping_template else None,
        "options": list(product.options),
        "skus": {
            sku.code: {
                "attributes": dict(sku.attributes),
                "price": sku.price,
                "barcode": sku.barcode,
                "weight_grams": sku.weight_grams,
                "active": sku.active,
            }
            for sku in product.skus
        },
    }


def _check_rows(draft: ProductDraft) -> None:
    wanted = {attributes_key(a) for a in sku_matrix(draft.options)}
    given = [attributes_key(row.attributes) for row in draft.rows]
    if sorted(given) != sorted(wanted):
        raise ValidationError(
            "the SKU rows do not match the options: generate the SKUs again",
            reason="sku_rows_stale",
        )
    codes = [row.code for row in draft.rows]
    if len(set(codes)) != len(codes):
        raise ValidationError(
            "SKU codes must be unique within a product",
            {"skus": codes},
            reason="sku_codes_repeated",
        )


def _sku_fields(row: SkuRow) -> dict[str, Any]:
    return {
        "price": row.price,
        "attributes": row.attributes,
        "barcode": row.barcode or None,
        "weight_grams": row.weight_grams,
    }


def save_product(user_id: str, product_id: int | None, draft: ProductDraft) -> Product:
    """Create a product (``product_id=None``) or save an existing one and its SKU matrix."""
    staff.require(user_id, "catalog.edit")
    _check_rows(draft)
    actor = f"staff:{user_id}"
    names = [name for name, _ in draft.options]
    with unit_of_work() as session:
        before: dict[str, Any] | None = None
        if product_id is None:
            product = catalog.create_product(
                title=draft.title,
                description=draft.description,
                category=draft.category,
                options=names,
                featured=draft.featured,
                source=actor,
                skus=[
                    {"code": row.code, "stock": row.stock, **_sku_fields(row)} for row in draft.rows
                ],
            )
        else:
            product = catalog.get_product(session, product_id)
            before = _snapshot(product)
            catalog.update_product(
                product.id,
                title=draft.title,
                description=draft.description,
                category=draft.category,
                featured=draft.featured,
            )
            product.options = names
            _save_skus(product, draft.rows, actor)
        product.shipping_template_id = (
            None
            if draft.shipping_template is None
            else shipping_templates.get_template(draft.shipping_template).id
        )
        session.flush()
        session.expire(product)
        staff.audit(
            actor, "catalog.save_product", "product", str(product.id), before, _snapshot(product)
        )
        return product


def _save_skus(product: Product, rows: list[SkuRow], actor: str) -> None:
    own = {sku.code: sku for sku in product.skus}
    kept = {row.code for row in rows}
    for code, sku in own.items():
        if code not in kept and sku.active:
            catalog.update_sku(code, active=False)
    for row in rows:
        if row.code in own:
            catalog.update_sku(row.code, active=True, **_sku_fields(row))
        else:
            catalog.add_sku(
                product.id, {"code": row.code, "stock": row.stock, **_sku_fields(row)}, source=actor
            )


def archive_product(user_id: str, product_id: int) -> Product:
    """Hide a product from the shop (its SKUs, orders and stock history stay)."""
    staff.require(user_id, "catalog.edit")
    with unit_of_work() as session:
        before = {"status": catalog.get_product(session, product_id).status}
        product = catalog.archive_product(product_id)
        staff.audit(
            f"staff:{user_id}",
            "catalog.archive",
            "product",
            str(product_id),
            before,
            {"status": product.status},
        )
        return product


def create_category(
    user_id: str, name: str, slug: str, *, parent: str | None = None, position: int = 0
) -> Category:
    staff.require(user_id, "catalog.edit")
    with unit_of_work():
        category = catalog.create_category(name, slug, parent=parent, position=position)
        after = {"name": name, "parent": parent, "position": position}
        staff.audit(f"staff:{user_id}", "catalog.create_category", "category", slug, None, after)
        return category


def add_image(user_id: str, product_id: int, stream: IO[bytes]) -> ProductImage:
    """Store an uploaded image (checked by content, see storage.read_image) and list it last.

    Stored as ``products/<product id>/<random>.<ext>``; the random name keeps the address of
    an old image from ever showing a new one.
    """
    staff.require(user_id, "catalog.edit")
    data, extension = read_image(stream)
    with unit_of_work() as session:
        product = catalog.get_product(session, product_id)
        image = store_product_image(session, product, data, extension)
        staff.audit(
            f"staff:{user_id}",
            "catalog.add_image",
            "product",
            str(product.id),
            None,
            {"image": image.path, "bytes": len(data)},
        )
        return image


def store_product_image(
    session: Session, product: Product, data: bytes, extension: str
) -> ProductImage:
    """Inside a caller's transaction: store checked image bytes (``read_image``) in the
    configured storage and list the image last on ``product`` (uploads and imports)."""
    position = session.scalar(
        select(func.coalesce(func.max(ProductImage.position), -1) + 1).where(
            ProductImage.product_id == product.id
        )
    )
    name = f"products/{product.id}/{secrets.token_hex(8)}.{extension}"
    # A failed commit leaves an unreferenced file behind, never a row without its file.
    path = get_state().storage.save(io.BytesIO(data), name)
    image = ProductImage(
        product_id=product.id, path=path, alt=product.title, position=position or 0
    )
    session.add(image)
    session.flush()
    return image


# -- stock -----------------------------------------------------------------------------------


def _levels(session: Session, code: str) -> dict[str, Any]:
    sku = inventory.get_sku(session, code)
    level = inventory.stock_level(session, sku, inventory.get_location(session))
    session.refresh(level)
    return {"on_hand": level.on_hand, "reserved": level.reserved}


def adjust_stock(user_id: str, code: str, delta: int, *, reason: str) -> StockSnapshot:
    """Count stock in or out by hand; the reason goes on the ledger movement and the audit."""
    staff.require(user_id, "stock.adjust")
    reason = reason.strip()
    if not reason or len(reason) > 300:
        raise ValidationError(
            "a stock adjustment needs a reason of at most 300 characters", reason="adjust_reason"
        )
    actor = f"staff:{user_id}"
    with unit_of_work() as session:
        before = _levels(session, code)
        snapshot = inventory.adjust(code, delta, reason="adjustment", source=actor, note=reason)
        after = {"on_hand": snapshot.on_hand, "reserved": snapshot.reserved, "reason": reason}
        staff.audit(actor, "stock.adjust", "sku", code, before, after)
        return snapshot


def set_low_stock_threshold(user_id: str, code: str, threshold: int | None) -> Sku:
    """At or below ``threshold`` available the SKU shows as low; None: the shop's default."""
    staff.require(user_id, "stock.adjust")
    if threshold is not None and not 0 <= threshold <= 1_000_000:
        raise ValidationError(
            "a low-stock threshold is a whole number from 0", reason="low_stock_threshold"
        )
    with unit_of_work() as session:
        sku = inventory.get_sku(session, code)
        before = {"low_stock_threshold": sku.low_stock_threshold}
        sku.low_stock_threshold = threshold
        session.flush()
        staff.audit(
            f"staff:{user_id}",
            "stock.threshold",
            "sku",
            code,
            before,
            {"low_stock_threshold": threshold},
        )
        return sku


# -- buyer message wording -------------------------------------------------------------------


def save_message_template(
    user_id: str,
    event: str,
    channel: str,
    *,
    subject: str = "",
    body: str = "",
    wechat_template_id: str | None = None,
) -> MessageTemplate:
    """Save the words of one (event, channel) buyer message; needs ``marketing.manage``.

    The notifications service tries the template on sample data and audits the change.
    """
    from koudai_flask.services import notifications

    staff.require(user_id, "marketing.manage")
    return notifications.save_template(
        event,
        channel,
        subject=subject,
        body=body,
        wechat_template_id=wechat_template_id,
        actor=f"staff:{user_id}",
    )


__all__ = [
    "MAX_OPTIONS",
    "MAX_SKUS",
    "ProductDraft",
    "SkuRow",
    "add_image",
    "adjust_stock",
    "archive_product",
    "attributes_key",
    "code_prefix",
    "create_category",
    "fen_to_yuan",
    "matrix_rows",
    "save_message_template",
    "save_product",
    "set_low_stock_threshold",
    "sku_matrix",
    "split_values",
    "store_product_image",
    "yuan_to_fen",
]
