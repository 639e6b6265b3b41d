"""REST API schemas of shipping: the templates (运费模板) and a quote for some goods."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.schemas import Length
from koudai_flask.schemas.api_common import MAX_INT
from koudai_flask.services.cart import MAX_QUANTITY

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


class QuoteLineIn(Schema):
    sku = fields.String(required=True, validate=Length(min=1, max=64))
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )
    unit_price = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_INT),
        metadata={"description": "fen the buyer pays for one; default: the SKU's price"},
    )


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
