"""REST API schemas of buyer reviews (评价)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.schemas import Length
from koudai_flask.schemas.api_common import MAX_INT, PageArgs, page_of
from koudai_flask.services import reviews


class ReviewOut(Schema):
    id = fields.Integer(required=True)
    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    variant = fields.String(required=True)
    number = fields.String(required=True, metadata={"description": "The order reviewed"})
    customer_id = fields.Integer(required=True)
    rating = fields.Integer(required=True, metadata={"description": "Stars, 1 to 5"})
    body = fields.String(required=True)
    author = fields.String(required=True, metadata={"description": "As shown: 李*"})
    status = fields.String(
        required=True, metadata={"description": "published (on the product's page) or hidden"}
    )
    reply = fields.String(required=True, metadata={"description": "The shop's reply, or empty"})
    replied_at = fields.DateTime(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)


ReviewPage = page_of(ReviewOut, "ReviewPage")


class ReviewListArgs(PageArgs):
    product_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_INT))
    sku = fields.String(load_default=None, validate=Length(min=1, max=64))
    rating_max = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=5),
        metadata={"description": "Only reviews of at most these stars (2: the low ones)"},
    )
    status = fields.String(load_default=None, validate=validate.OneOf(("published", "hidden")))


class ReplyIn(Schema):
    reply = fields.String(
        required=True,
        validate=Length(max=reviews.MAX_TEXT),
        metadata={"description": "The shop's reply under the review; empty removes it."},
    )


class ReviewStatusIn(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("published", "hidden")))
