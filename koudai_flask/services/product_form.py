"""The product form read as plain values: yuan amounts, option values and the SKU matrix.

A product's SKUs form a matrix: every combination of its option values (colour × size) is
one SKU. This module turns what staff type (``129.99``, ``红, 蓝``) into fen, values and
combinations, and lays out the form's rows, suggesting a free code for each new one.
:mod:`koudai_flask.services.catalog_admin` saves the result; nothing here writes.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from koudai_flask.errors import ValidationError
from koudai_flask.models import Product, Sku
from koudai_flask.services import catalog
from koudai_flask.services.transaction import current_session

MAX_OPTIONS = 3
MAX_SKUS = 200
# At most 99,999,999.99 yuan, at most two decimals: nothing for Decimal to round.
_YUAN = re.compile(r"^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$")
# Staff type values as 红,蓝 or 红，蓝 or 红、蓝 (Chinese keyboards).
_SEPARATORS = re.compile(r"[,，、;；\n]+")
_CODE_TOKEN = re.compile(r"^[A-Za-z0-9]{1,12}$")


# -- plain values ----------------------------------------------------------------------------


def yuan_to_fen(text: str) -> int:
    """``"129.99"`` → 12999 exactly; anything but a plain amount raises ``ValidationError``."""
    cleaned = text.strip().removeprefix("¥").removeprefix("￥").strip()
    if not _YUAN.match(cleaned):
        raise ValidationError(
            f"{text!r} is not an amount in yuan like 129.00",
            reason="not_an_amount",
            detail={"text": text},
        )
    return int(Decimal(cleaned) * 100)


def fen_to_yuan(fen: int) -> str:
    """12999 → ``"129.99"`` (-50 → ``"-0.50"``): a price in a form field or a CSV cell."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def split_values(text: str) -> list[str]:
    """Option values as typed (``红, 蓝``): trimmed, without repeats, in the order given."""
    return list(dict.fromkeys(v.strip() for v in _SEPARATORS.split(text) if v.strip()))


def attributes_key(attributes: dict[str, str]) -> str:
    """One combination's identity, the same whatever the order of its options."""
    return json.dumps(attributes, ensure_ascii=False, sort_keys=True)


def sku_matrix(options: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination of the option values, in the order typed; ``[{}]`` without options."""
    names = [name for name, _ in options]
    if len(names) > MAX_OPTIONS:
        raise ValidationError(
            f"a product has at most {MAX_OPTIONS} options",
            reason="too_many_options",
            detail={"most": MAX_OPTIONS},
        )
    if any(not name or len(name) > 40 for name in names) or len(set(names)) != len(names):
        raise ValidationError(
            "option names must be different and at most 40 characters", reason="option_names"
        )
    empty = [name for name, values in options if not values]
    if empty:
        raise ValidationError(
            f"option {empty[0]!r} has no values", reason="option_empty", detail={"option": empty[0]}
        )
    if any(len(value) > 40 for _, values in options for value in values):
        raise ValidationError(
            "an option value has at most 40 characters", reason="option_value_long"
        )
    if math.prod(len(values) for _, values in options) > MAX_SKUS:
        raise ValidationError(
            f"a product has at most {MAX_SKUS} SKUs",
            reason="too_many_skus",
            detail={"most": MAX_SKUS},
        )
    return [
        dict(zip(names, combination, strict=True))
        for combination in itertools.product(*(values for _, values in options))
    ]


@dataclass(frozen=True)
class SkuRow:
    """One row of the SKU matrix as staff typed it; ``stock`` only opens a new SKU."""

    attributes: dict[str, str]
    code: str
    price: int
    barcode: str = ""
    weight_grams: int = 0
    stock: int = 0


@dataclass(frozen=True)
class ProductDraft:
    """A product form: its fields, its options with their values, one row per combination."""

    title: str
    description: str = ""
    category: str | None = None
    featured: bool = False
    options: list[tuple[str, list[str]]] = field(default_factory=list)
    shipping_template: int | None = None  # its ShippingTemplate's id; None: the flat fee
    rows: list[SkuRow] = field(default_factory=list)


# -- the SKU matrix in the form --------------------------------------------------------------


def matrix_rows(
    product: Product | None,
    options: list[tuple[str, list[str]]],
    *,
    prefix: str,
    default_price: str = "",
    typed: dict[str, dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """The form rows of every combination, as strings: what staff typed for it, else the
    product's SKU with those attributes, else a suggested code and ``default_price``."""
    typed = typed or {}
    own: dict[str, Sku] = {}
    for old in sorted(product.skus if product else [], key=lambda s: (s.active, s.id)):
        own[attributes_key(old.attributes)] = old  # an active SKU wins over an old one
    codes = {old.code: old for old in (product.skus if product else [])}
    used: set[str] = set()
    rows: list[dict[str, Any]] = []
    for attributes in sku_matrix(options):
        key = attributes_key(attributes)
        sku = own.get(key)
        row: dict[str, Any]
        if key in typed:
            row = dict(typed[key])
        elif sku is not None:
            row = {
                "code": sku.code,
                "price": fen_to_yuan(sku.price),
                "barcode": sku.barcode or "",
                "weight": str(sku.weight_grams),
                "stock": "",
            }
        else:
            code = _free_code(_suggest_code(prefix, options, attributes), used)
            row = {"code": code, "price": default_price, "barcode": "", "weight": "0", "stock": "0"}
        used.add(row.get("code", ""))
        existing = codes.get(row.get("code", ""))
        row.update(key=key, attributes=attributes, sku=existing)
        rows.append(row)
    return rows


def _suggest_code(prefix: str, options: list[tuple[str, list[str]]], attrs: dict[str, str]) -> str:
    """PREFIX-RED-S; a value that cannot be part of a code (红) becomes its position (1)."""
    tokens = [prefix or "SKU"]
    for name, values in options:
        value = attrs[name].replace(" ", "")
        tokens.append(
            value.upper() if _CODE_TOKEN.match(value) else str(values.index(attrs[name]) + 1)
        )
    return "-".join(tokens)[:64]


def _free_code(code: str, used: set[str]) -> str:
    session = current_session()
    candidate, n = code, 1
    while candidate in used or session.scalar(select(Sku.id).where(Sku.code == candidate)):
        n += 1
        candidate = f"{code[:60]}-{n}"
    return candidate


def code_prefix(title: str, product: Product | None = None) -> str:
    """The start of new SKU codes: what the product's codes share (``TEE`` of ``TEE-1-S``),
    else the title's (``Oxford shirt`` → ``OXFORD-SHIRT``)."""
    heads = {sku.code.split("-")[0] for sku in product.skus} if product else set()
    if len(heads) == 1:
        return heads.pop()
    slug = catalog.slugify(title)
    return "SKU" if slug == "item" else slug.upper()[:24].strip("-")
