"""REST API schemas of the reports: best sellers (热销商品)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from koudai_flask.schemas import Length
from koudai_flask.services import best_sellers, funnel_stats


class BestSellerArgs(Schema):
    start = fields.Date(
        data_key="from",
        load_default=None,
        metadata={
            "description": "First day (the shop's days), YYYY-MM-DD; default 29 days before `to`."
        },
    )
    end = fields.Date(
        data_key="to",
        load_default=None,
        metadata={"description": "Last day, included; default today."},
    )
    channel = fields.String(load_default=None, validate=Length(min=1, max=40))
    sort = fields.String(
        load_default="units",
        validate=validate.OneOf(best_sellers.SORTS),
        metadata={
            "description": "units (most first), sales (most first) or days_left "
            "(what runs out first)"
        },
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))

    @validates_schema
    def _range(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None:
            if start > end:
                raise ValidationError("the first day is after the last", "from")
            if (end - start).days >= funnel_stats.MAX_DAYS:
                raise ValidationError(f"at most {funnel_stats.MAX_DAYS} days", "from")


class BestSellerOut(Schema):
    sku = fields.String(required=True)
    product_id = fields.Integer(required=True)
    title = fields.String(required=True, metadata={"description": "The product's title now"})
    variant = fields.String(required=True)
    units = fields.Integer(required=True, metadata={"description": "Paid, less refunded"})
    sales = fields.Integer(required=True, metadata={"description": "Fen, at the lines' prices"})
    orders = fields.Integer(required=True)
    by_channel = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Units per channel name"},
    )
    available = fields.Integer(required=True, metadata={"description": "At the default location"})
    days_left = fields.Float(
        required=True, metadata={"description": "available / units per day of the range"}
    )


class BestSellersOut(Schema):
    start = fields.Date(data_key="from", required=True)
    end = fields.Date(data_key="to", required=True)
    days = fields.Integer(required=True)
    sort = fields.String(required=True)
    units = fields.Integer(required=True, metadata={"description": "Over every SKU that sold"})
    sales = fields.Integer(required=True)
    skus = fields.Integer(required=True, metadata={"description": "SKUs that sold at all"})
    items = fields.List(fields.Nested(BestSellerOut), required=True)
