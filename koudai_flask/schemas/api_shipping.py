"""REST API schemas of shipping: the templates (运费模板) and a quote for some goods."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.schemas import Length
from koudai_flask.schemas.api_common import MAX_INT
from koudai_flask.services.cart import MAX_QUANTITY
from koudai_flask.services.freight import PROVINCES
from koudai_flask.services.shipping_templates import BASES, MAX_AREAS, MAX_FEE, MAX_UNITS

_UNITS = "pieces or grams, by the template's basis"


class ShippingAreaOut(Schema):
    provinces = fields.List(fields.String(), required=True)
    first = fields.Integer(required=True, metadata={"description": _UNITS})
    first_fee = fields.Integer(required=True, metadata={"description": "fen"})
    additional = fields.Integer(required=True, metadata={"description": _UNITS})
    additional_fee = fields.Integer(required=True, metadata={"description": "fen"})


class ShippingTemplateOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    basis = fields.String(required=True, metadata={"enum": ["piece", "weight"]})
    first = fields.Integer(required=True, metadata={"description": _UNITS})
    first_fee = fields.Integer(required=True, metadata={"description": "fen"})
    additional = fields.Integer(required=True, metadata={"description": _UNITS})
    additional_fee = fields.Integer(required=True, metadata={"description": "fen"})
    free_over = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "fen of this template's goods from which they ship free"},
    )
    areas = fields.List(fields.Nested(ShippingAreaOut), required=True)
    excluded = fields.List(
        fields.String(), required=True, metadata={"description": "provinces not delivered to"}
    )


class ShippingTemplateList(Schema):
    items = fields.List(fields.Nested(ShippingTemplateOut), required=True)


def _units(description: str) -> fields.Integer:
    return fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_UNITS),
        metadata={"description": description},
    )


def _fee(description: str = "fen") -> fields.Integer:
    return fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_FEE),
        metadata={"description": description},
    )


def _optional_fen(low: int, high: int, description: str) -> fields.Integer:
    return fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=low, max=high),
        metadata={"description": description},
    )


def _provinces(description: str, *, least: int) -> fields.List:
    if least:
        return fields.List(
            fields.String(validate=Length(min=1, max=20)),
            required=True,
            validate=Length(min=least, max=len(PROVINCES)),
            metadata={"description": description},
        )
    return fields.List(
        fields.String(validate=Length(min=1, max=20)),
        load_default=list,
        validate=Length(max=len(PROVINCES)),
        metadata={"description": description},
    )


class ShippingAreaIn(Schema):
    provinces = _provinces("province names (浙江 or 浙江省)", least=1)
    first = _units(f"the first {_UNITS}")
    first_fee = _fee("fen for the first")
    additional = _units(f"each further step, {_UNITS}")
    additional_fee = _fee("fen per further step")


class ShippingTemplateIn(Schema):
    """A whole template, as the back office's form saves it (PUT replaces every field)."""

    name = fields.String(required=True, validate=Length(min=1, max=40))
    basis = fields.String(required=True, validate=validate.OneOf(BASES))
    first = _units(f"the first {_UNITS}, everywhere no area names")
    first_fee = _fee("fen for the first")
    additional = _units(f"each further step, {_UNITS}")
    additional_fee = _fee("fen per further step")
    free_over = _optional_fen(1, MAX_FEE, "fen of this template's goods from which they ship free")
    areas = fields.List(
        fields.Nested(ShippingAreaIn),
        load_default=list,
        validate=Length(max=MAX_AREAS),
        metadata={"description": "provinces charged otherwise; a province in one area only"},
    )
    excluded = _provinces("provinces not delivered to", least=0)


class ProductShippingIn(Schema):
    shipping_template = fields.String(
        required=True,
        allow_none=True,
        validate=Length(min=1, max=40),
        metadata={"description": "a template's name; null: the shop's flat fee"},
    )


class QuoteLineIn(Schema):
    sku = fields.String(required=True, validate=Length(min=1, max=64))
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )
    unit_price = _optional_fen(0, MAX_INT, "fen the buyer pays for one; default: the SKU's price")


class ShippingQuoteIn(Schema):
    lines = fields.List(fields.Nested(QuoteLineIn), required=True, validate=Length(min=1, max=100))
    province = fields.String(
        load_default=None,
        allow_none=True,
        validate=Length(max=40),
        metadata={"description": "the address's province as written (浙江省); null: not known"},
    )


class ShippingQuoteOut(Schema):
    fee = fields.Integer(required=True, metadata={"description": "fen"})
    province = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the province the fee is for (浙江), null when not known"},
    )
    undeliverable = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "titles of the goods not delivered to that province"},
    )
