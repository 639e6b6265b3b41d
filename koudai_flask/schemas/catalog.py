"""Schemas of catalog input: products, SKUs and categories."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.schemas import Length

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", error="letters, digits, . _ - only")
SLUG = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,119}$", error="lower-case letters, digits and -")


class SkuInput(Schema):
    code = fields.String(required=True, validate=CODE)
    price = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    compare_at_price = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=0)
    )
    attributes = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    barcode = fields.String(allow_none=True, load_default=None, validate=Length(max=64))
    weight_grams = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0))
    stock = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0))


class ProductInput(Schema):
    title = fields.String(required=True, validate=Length(min=1, max=200))
    slug = fields.String(allow_none=True, load_default=None, validate=SLUG)
    description = fields.String(load_default="")
    category = fields.String(allow_none=True, load_default=None)
    options = fields.List(fields.String(), load_default=list)
    featured = fields.Boolean(load_default=False)
    images = fields.List(fields.String(validate=Length(min=1, max=300)), load_default=list)
    skus = fields.List(fields.Nested(SkuInput), required=True, validate=Length(min=1))


class ProductUpdate(Schema):
    title = fields.String(validate=Length(min=1, max=200))
    description = fields.String()
    category = fields.String(allow_none=True)
    featured = fields.Boolean()


class SkuUpdate(Schema):
    price = fields.Integer(strict=True, validate=validate.Range(min=0))
    compare_at_price = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0))
    attributes = fields.Dict(keys=fields.String(), values=fields.String())
    barcode = fields.String(allow_none=True, validate=Length(max=64))
    weight_grams = fields.Integer(strict=True, validate=validate.Range(min=0))
    active = fields.Boolean()


class CategoryInput(Schema):
    name = fields.String(required=True, validate=Length(min=1, max=120))
    slug = fields.String(required=True, validate=SLUG)
    parent = fields.String(allow_none=True, load_default=None)
    position = fields.Integer(strict=True, load_default=0)
