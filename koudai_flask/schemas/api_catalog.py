"""REST API schemas of the catalog: products and their SKUs as the API shows them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.models import Product
from koudai_flask.schemas import Length
from koudai_flask.schemas.api_common import MAX_INT, PageArgs, page_of
from koudai_flask.schemas.catalog import CODE, ProductInput, SkuUpdate
from koudai_flask.services.reviews import summary

_AMOUNT = validate.Range(min=0, max=MAX_INT)


class ApiSkuInput(Schema):
    """``SkuInput`` with upper bounds that fit the database's integer columns."""

    code = fields.String(required=True, validate=CODE)
    price = fields.Integer(required=True, strict=True, validate=_AMOUNT)
    compare_at_price = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=_AMOUNT
    )
    attributes = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    barcode = fields.String(allow_none=True, load_default=None, validate=Length(max=64))
    weight_grams = fields.Integer(strict=True, load_default=0, validate=_AMOUNT)
    stock = fields.Integer(strict=True, load_default=0, validate=_AMOUNT)


class ApiProductInput(ProductInput):
    skus = fields.List(fields.Nested(ApiSkuInput), required=True, validate=Length(min=1))


class ApiSkuUpdate(SkuUpdate):
    price = fields.Integer(strict=True, validate=_AMOUNT)
    compare_at_price = fields.Integer(strict=True, allow_none=True, validate=_AMOUNT)
    weight_grams = fields.Integer(strict=True, validate=_AMOUNT)


class SkuOut(Schema):
    code = fields.String(required=True)
    product_id = fields.Integer(required=True)
    price = fields.Integer(required=True, metadata={"description": "fen"})
    compare_at_price = fields.Integer(required=True, allow_none=True)
    attributes = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    barcode = fields.String(required=True, allow_none=True)
    weight_grams = fields.Integer(required=True)
    active = fields.Boolean(required=True)


class ProductOut(Schema):
    id = fields.Integer(required=True)
    slug = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["active", "archived"]})
    featured = fields.Boolean(required=True)
    category = fields.Method(
        "category_slug", required=True, metadata={"type": "string", "nullable": True}
    )
    options = fields.List(fields.String(), required=True)
    shipping_template = fields.Method(
        "shipping_template_name",
        required=True,
        metadata={
            "type": "string",
            "nullable": True,
            "description": "its shipping template's name; null: the shop's flat fee",
        },
    )
    images = fields.Method(
        "image_paths", required=True, metadata={"type": "array", "items": {"type": "string"}}
    )
    skus = fields.List(fields.Nested(SkuOut), required=True)
    review_count = fields.Integer(
        required=True, metadata={"description": "Published buyer reviews (评价)"}
    )
    rating = fields.Method(
        "average_rating",
        required=True,
        metadata={
            "type": "number",
            "nullable": True,
            "description": "Their average stars, one decimal; null without reviews",
        },
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)

    def image_paths(self, product: Product) -> list[str]:
        return [image.path for image in product.images]

    def shipping_template_name(self, product: Product) -> str | None:
        template = product.shipping_template
        return template.name if template is not None else None

    def average_rating(self, product: Product) -> float | None:
        return summary(product.review_count, product.rating_total).average

    def category_slug(self, product: Product) -> str | None:
        return product.category.slug if product.category is not None else None


ProductPage = page_of(ProductOut, "ProductPage")
SkuPage = page_of(SkuOut, "SkuPage")


class ProductListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(["active", "archived"]))


class SkuListArgs(PageArgs):
    active = fields.Boolean(load_default=None)
