"""Catalog endpoints: products and their SKUs."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import idempotent, principal, requires
from koudai_flask.schemas.api_catalog import (
    ApiProductInput,
    ApiSkuUpdate,
    ProductListArgs,
    ProductOut,
    ProductPage,
    SkuListArgs,
    SkuOut,
    SkuPage,
)
from koudai_flask.services import platform_actions, platform_reads


def register(bp: Blueprint) -> None:
    @bp.route("/products", methods=["GET"])
    @requires(None)
    @bp.arguments(ProductListArgs, location="query")
    @bp.response(200, ProductPage)
    def products_list(args: dict[str, Any]) -> Any:
        """Products with their SKUs, oldest first."""
        return platform_reads.products(
            status=args["status"], cursor=args["cursor"], limit=args["limit"]
        )

    @bp.route("/products", methods=["POST"])
    @requires("catalog.edit")
    @idempotent
    @bp.arguments(ApiProductInput)
    @bp.response(201, ProductOut)
    def product_create(data: dict[str, Any]) -> Any:
        """Create a product and its SKUs; a SKU's `stock` is its opening on-hand count."""
        product_id = platform_actions.create_product(principal(), data)
        return platform_reads.product(product_id)

    @bp.route("/products/<int:product_id>", methods=["GET"])
    @requires(None)
    @bp.response(200, ProductOut)
    def product_read(product_id: int) -> Any:
        """One product with its SKUs and images."""
        return platform_reads.product(product_id)

    @bp.route("/skus", methods=["GET"])
    @requires(None)
    @bp.arguments(SkuListArgs, location="query")
    @bp.response(200, SkuPage)
    def skus_list(args: dict[str, Any]) -> Any:
        """Every SKU, oldest first."""
        return platform_reads.skus(
            active=args["active"], cursor=args["cursor"], limit=args["limit"]
        )

    @bp.route("/skus/<code>", methods=["GET"])
    @requires(None)
    @bp.response(200, SkuOut)
    def sku_read(code: str) -> Any:
        """One SKU by its code."""
        return platform_reads.sku(code)

    @bp.route("/skus/<code>", methods=["PATCH"])
    @requires("catalog.edit")
    @bp.arguments(ApiSkuUpdate)
    @bp.response(200, SkuOut)
    def sku_update(changes: dict[str, Any], code: str) -> Any:
        """Change a SKU's price, attributes, barcode, weight or whether it is on sale."""
        platform_actions.update_sku(principal(), code, changes)
        return platform_reads.sku(code)
