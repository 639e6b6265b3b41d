"""Schemas every REST API endpoint shares: the error body and cursor pagination."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.schemas import Length

MAX_PAGE = 200
# The columns are 32-bit integers: a bigger figure must be a 422, never a database error.
MAX_INT = 2_147_483_647


class ApiError(Schema):
    """``{"code", "message", "errors"}`` (+ ``reason``, ``detail``): ``errors`` maps a field to
    what is wrong with it."""

    code = fields.String(required=True, metadata={"example": "ValidationError"})
    message = fields.String(required=True)
    errors = fields.Dict(required=True, metadata={"description": "field name -> messages"})
    reason = fields.String(
        metadata={"description": "The refusal in one word, when it has one", "example": "not_dead"}
    )
    detail = fields.Dict(
        metadata={
            "description": "The refusal's figures: OutOfStock {sku, requested, available}; "
            "InvalidTransition {number, status, action}; StaleQuantity {sku, "
            "expected_on_hand, on_hand}",
            "example": {"sku": "SHIRT-B", "requested": 3, "available": 1},
        }
    )


class ApiRoot(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)
    openapi = fields.String(required=True, metadata={"description": "This API's OpenAPI document"})
    docs = fields.String(required=True, metadata={"description": "The same, as a page"})


class PageArgs(Schema):
    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"Items per page, 1 to {MAX_PAGE}."},
    )
    cursor = fields.String(
        load_default=None,
        validate=Length(min=1, max=200),
        metadata={"description": "The `next_cursor` of the previous page."},
    )


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """A page schema: ``items`` and the opaque ``next_cursor`` (null on the last page)."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(required=True, allow_none=True),
        },
        name=name,
    )
