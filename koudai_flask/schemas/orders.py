"""Schemas of order input: lines and shipping addresses."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.schemas import Length


class OrderLineInput(Schema):
    sku = fields.String(required=True, validate=Length(min=1, max=64))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=9999))
    # Only for orders imported from another channel, which set their own prices.
    unit_price = fields.Integer(strict=True, validate=validate.Range(min=0))


class AddressInput(Schema):
    name = fields.String(required=True, validate=Length(min=1, max=60))
    phone = fields.String(required=True, validate=validate.Regexp(r"^\+?[0-9 -]{5,20}$"))
    province = fields.String(load_default="", validate=Length(max=40))
    city = fields.String(load_default="", validate=Length(max=40))
    district = fields.String(load_default="", validate=Length(max=40))
    street = fields.String(required=True, validate=Length(min=1, max=200))
    postcode = fields.String(load_default="", validate=Length(max=12))


class PlaceOrderInput(Schema):
    lines = fields.List(
        fields.Nested(OrderLineInput), required=True, validate=Length(min=1, max=100)
    )
    address = fields.Nested(AddressInput, allow_none=True, load_default=None)
    shipping_fee = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0))
    external_id = fields.String(allow_none=True, load_default=None, validate=Length(min=1, max=64))
    note = fields.String(load_default="", validate=Length(max=500))
