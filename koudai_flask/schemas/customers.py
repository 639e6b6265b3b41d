"""Schemas of buyer input: registration and address-book entries."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from koudai_flask.schemas import Length

PHONE = validate.Regexp(r"^1[3-9][0-9]{9}$", error="a mainland mobile number, 11 digits")


class RegisterInput(Schema):
    email = fields.Email(allow_none=True, load_default=None)
    phone = fields.String(allow_none=True, load_default=None, validate=PHONE)
    password = fields.String(required=True, validate=Length(min=8, max=200))
    name = fields.String(load_default="", validate=Length(max=120))

    @validates_schema
    def needs_a_login(self, data: dict[str, object], **_: object) -> None:
        if not data.get("email") and not data.get("phone"):
            raise ValidationError("give an email or a phone number", "email")


class AddressBookInput(Schema):
    name = fields.String(required=True, validate=Length(min=1, max=60))
    phone = fields.String(required=True, validate=validate.Regexp(r"^\+?[0-9 -]{5,20}$"))
    province = fields.String(load_default="", validate=Length(max=40))
    city = fields.String(load_default="", validate=Length(max=40))
    district = fields.String(load_default="", validate=Length(max=40))
    street = fields.String(required=True, validate=Length(min=1, max=200))
    postcode = fields.String(load_default="", validate=Length(max=12))
    is_default = fields.Boolean(load_default=False)
