"""Stock endpoints: levels, adjustments and counts, with compare-and-set."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import request
from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import IDEMPOTENCY_HEADER, idempotent, principal, requires
from koudai_flask.schemas.api_stock import (
    AdjustmentIn,
    CountIn,
    StockLevelOut,
    StockListArgs,
    StockPage,
    StockReadOut,
)
from koudai_flask.services import platform_actions, platform_reads, stock_alerts


def _ledger_key(kind: str, sku: str) -> str | None:
    """The ledger's own idempotency key for this request, from the caller's header."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    digest = hashlib.sha256(f"{kind}:{sku}:{key}".encode()).hexdigest()[:40]
    return f"api:{principal().key_id}:{digest}"


def register(bp: Blueprint) -> None:
    @bp.route("/stock", methods=["GET"])
    @requires("stock.adjust")
    @bp.arguments(StockListArgs, location="query")
    @bp.response(200, StockPage)
    def stock_list(args: dict[str, Any]) -> Any:
        """Stock levels per SKU and location: on hand, reserved and available."""
        return platform_reads.stock_levels(
            principal(),
            sku_code=args["sku"],
            location=args["location"],
            cursor=args["cursor"],
            limit=args["limit"],
        )

    @bp.route("/stock/<sku>", methods=["GET"])
    @requires("stock.adjust")
    @bp.response(200, StockReadOut)
    def stock_read(sku: str) -> Any:
        """A SKU's stock at the default location, with how many buyers wait for it."""
        level = platform_actions.snapshot(principal(), sku, None)
        return {
            "sku": level.sku,
            "location": level.location,
            "on_hand": level.on_hand,
            "reserved": level.reserved,
            "available": level.available,
            "buyers_waiting": stock_alerts.waiting_for(sku),
        }

    @bp.route("/stock/<sku>/adjustments", methods=["POST"])
    @requires("stock.adjust")
    @idempotent
    @bp.arguments(AdjustmentIn)
    @bp.response(201, StockLevelOut)
    def stock_adjust(data: dict[str, Any], sku: str) -> Any:
        """Add units to (or remove them from) the on-hand count; 409 when the
        compare-and-set's `expected_on_hand` is stale or when reserved stock would go."""
        return platform_actions.adjust_stock(
            principal(),
            sku,
            delta=data["delta"],
            reason=data["reason"],
            note=data["note"],
            location=data["location"],
            expected_on_hand=data["expected_on_hand"],
            idempotency_key=_ledger_key("adjust", sku),
        )

    @bp.route("/stock/<sku>/counts", methods=["POST"])
    @requires("stock.adjust")
    @idempotent
    @bp.arguments(CountIn)
    @bp.response(201, StockLevelOut)
    def stock_count(data: dict[str, Any], sku: str) -> Any:
        """Set the on-hand count to what was counted; 409 when `expected_on_hand` is stale
        or the count is below what open orders hold."""
        return platform_actions.count_stock(
            principal(),
            sku,
            quantity=data["quantity"],
            location=data["location"],
            expected_on_hand=data["expected_on_hand"],
            idempotency_key=_ledger_key("count", sku),
        )
