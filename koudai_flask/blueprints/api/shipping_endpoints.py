"""Shipping endpoints: the shop's shipping templates, and what some goods cost to send to a
province (for a storefront elsewhere, before it places the order with that fee)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import requires
from koudai_flask.schemas.api_shipping import (
    ShippingQuoteIn,
    ShippingQuoteOut,
    ShippingTemplateList,
)
from koudai_flask.services import freight
from koudai_flask.services.shipping_templates import templates as every_template


def register(bp: Blueprint) -> None:
    @bp.route("/shipping-templates", methods=["GET"])
    @requires(None)
    @bp.response(200, ShippingTemplateList)
    def shipping_templates() -> Any:
        """Every shipping template, by name."""
        return {"items": [template for template, _ in every_template()]}

    @bp.route("/shipping/quote", methods=["POST"])
    @requires(None)
    @bp.arguments(ShippingQuoteIn)
    @bp.response(200, ShippingQuoteOut)
    def shipping_quote(data: dict[str, Any]) -> Any:
        """The shipping fee of some goods to a province, as the shop's checkout works it
        out, and the goods not delivered there. Changes nothing."""
        return freight.quote_codes(data["lines"], data["province"])
