"""The catalog import's records: a channel item as plain data, and what importing it did.

The job (:mod:`koudai_flask.jobs.catalog_import`) maps a channel's item onto these records
and :mod:`koudai_flask.services.catalog_import` applies them. A record is checked before
anything is written (:func:`check_item` names each field that cannot be imported,
:func:`checked_pictures` refuses a file that is not an image), so a bad item changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from koudai_flask.errors import ValidationError
from koudai_flask.storage import MAX_IMAGE_BYTES, sniff_image

CREATED, UPDATED, BOUND, UNCHANGED = "created", "updated", "bound", "unchanged"
OUTCOMES = (CREATED, UPDATED, BOUND, UNCHANGED)
MAX_PICTURES = 20


@dataclass(frozen=True)
class ImportedSku:
    """One SKU of a channel item; ``sku_id`` None stands for an item sold without SKUs."""

    sku_id: int | None
    outer_id: str
    attributes: tuple[tuple[str, str], ...]
    price_fen: int
    quantity: int


@dataclass(frozen=True)
class ImportedItem:
    """A channel item as plain data, its pictures already fetched as ``(bytes, filename)``."""

    num_iid: int
    title: str
    desc: str
    price_fen: int
    modified: datetime | None
    skus: tuple[ImportedSku, ...]
    images: tuple[tuple[bytes, str], ...] = ()


@dataclass(frozen=True)
class ImportResult:
    """What importing one item did, and to which product (None when it was skipped)."""

    outcome: str
    product_id: int | None
    sku_codes: tuple[str, ...] = ()


def check_item(item: ImportedItem) -> None:
    """Raise ``ValidationError`` naming each field of ``item`` that cannot be imported."""
    problems: dict[str, Any] = {}
    if isinstance(item.num_iid, bool) or not isinstance(item.num_iid, int) or item.num_iid <= 0:
        problems["num_iid"] = ["a positive integer"]
    if not item.title.strip():
        problems["title"] = ["required"]
    if item.modified is not None and item.modified.tzinfo is None:
        problems["modified"] = ["a timezone-aware datetime"]
    if not item.skus:
        problems["skus"] = ["at least one SKU (an item without SKUs has one with sku_id None)"]
    ids = [sku.sku_id for sku in item.skus]
    if len(set(ids)) != len(ids) or (None in ids and len(ids) > 1):
        problems["skus"] = ["SKU ids must be unique, and None only for a lone SKU"]
    if any(sku.price_fen < 0 or sku.quantity < 0 for sku in item.skus) or item.price_fen < 0:
        problems["price"] = ["prices and quantities cannot be negative"]
    if any(not name for sku in item.skus for name, _ in sku.attributes):
        problems["attributes"] = ["attribute names cannot be empty"]
    if len(item.images) > MAX_PICTURES:
        problems["images"] = [f"at most {MAX_PICTURES} pictures"]
    if problems:
        raise ValidationError(f"item {item.num_iid}: {', '.join(sorted(problems))}", problems)


def checked_pictures(item: ImportedItem) -> list[tuple[bytes, str]]:
    """Each picture's bytes and extension, checked by content as uploads are."""
    checked = []
    for data, filename in item.images:
        extension = sniff_image(data) if 0 < len(data) <= MAX_IMAGE_BYTES else None
        if extension is None:
            raise ValidationError(f"item {item.num_iid}: picture {filename!r} is not an image")
        checked.append((data, extension))
    return checked
