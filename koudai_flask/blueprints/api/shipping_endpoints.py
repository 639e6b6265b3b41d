"""Shipping endpoints: the shop's shipping templates, kept as the back office keeps them
(``catalog.edit``, audited as the key's owner), given to products, and what some goods cost to
send to a province (for a storefront elsewhere, before it places the order with that fee)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import idempotent, principal, requires
from koudai_flask.schemas.api_catalog import ProductOut
from koudai_flask.schemas.api_customers import ID
from koudai_flask.schemas.api_shipping import (
    ProductShippingIn,
    ShippingQuoteIn,
    ShippingQuoteOut,
    ShippingTemplateIn,
    ShippingTemplateList,
    ShippingTemplateOut,
)
from koudai_flask.services import freight, platform_reads
from koudai_flask.services import shipping_templates as template_service


def register(bp: Blueprint) -> None:
    @bp.route("/shipping-templates", methods=["GET"])
    @requires(None)
    @bp.response(200, ShippingTemplateList)
    def shipping_templates() -> Any:
        """Every shipping template, by name."""
        return {"items": [template for template, _ in template_service.templates()]}

    @bp.route("/shipping-templates", methods=["POST"])
    @requires("catalog.edit")
    @idempotent
    @bp.arguments(ShippingTemplateIn)
    @bp.response(201, ShippingTemplateOut)
    def shipping_template_create(data: dict[str, Any]) -> Any:
        """Create a template. Names are unique; a province may sit in one area only, or be
        excluded (not delivered to)."""
        return template_service.save_template(principal().user_id, None, data)

    @bp.route(f"/shipping-templates/<{ID}:template_id>", methods=["GET"])
    @requires(None)
    @bp.response(200, ShippingTemplateOut)
    def shipping_template_read(template_id: int) -> Any:
        """One template."""
        return template_service.get_template(template_id)

    @bp.route(f"/shipping-templates/<{ID}:template_id>", methods=["PUT"])
    @requires("catalog.edit")
    @bp.arguments(ShippingTemplateIn)
    @bp.response(200, ShippingTemplateOut)
    def shipping_template_replace(data: dict[str, Any], template_id: int) -> Any:
        """Replace every field of a template; the products naming it charge the new fees
        from the next cart on (orders placed keep their fee)."""
        return template_service.save_template(principal().user_id, template_id, data)

    @bp.route(f"/shipping-templates/<{ID}:template_id>", methods=["DELETE"])
    @requires("catalog.edit")
    @bp.response(204)
    def shipping_template_delete(template_id: int) -> Any:
        """Delete a template no product names (422 `template_in_use` with the count
        otherwise: give those products another template first)."""
        template_service.delete_template(principal().user_id, template_id)

    @bp.route(f"/products/<{ID}:product_id>/shipping-template", methods=["PUT"])
    @requires("catalog.edit")
    @bp.arguments(ProductShippingIn)
    @bp.response(200, ProductOut)
    def product_shipping_template(data: dict[str, Any], product_id: int) -> Any:
        """Give a product a template by its name, or the shop's flat fee with null."""
        platform_reads.product(product_id)  # 404 for an unknown product
        template_id = template_service.template_named(data["shipping_template"])
        template_service.assign(principal().user_id, [product_id], template_id)
        return platform_reads.product(product_id)

    @bp.route("/shipping/quote", methods=["POST"])
    @requires(None)
    @bp.arguments(ShippingQuoteIn)
    @bp.response(200, ShippingQuoteOut)
    def shipping_quote(data: dict[str, Any]) -> Any:
        """The shipping fee of some goods to a province, as the shop's checkout works it
        out, and the goods not delivered there. Changes nothing."""
        return freight.quote_codes(data["lines"], data["province"])
