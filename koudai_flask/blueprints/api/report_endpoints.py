"""Report endpoints: best sellers (热销商品), within the key's channels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import principal, requires
from koudai_flask.schemas.api_reports import BestSellerArgs, BestSellersOut
from koudai_flask.services import best_sellers, funnel_stats

DEFAULT_DAYS = 30


def register(bp: Blueprint) -> None:
    @bp.route("/reports/best-sellers", methods=["GET"])
    @requires("orders.view")
    @bp.arguments(BestSellerArgs, location="query")
    @bp.response(200, BestSellersOut)
    def best_sellers_report(args: dict[str, Any]) -> Any:
        """The SKUs sold in a range of days, best first, with units per channel and the days
        the default location's stock lasts at that pace."""
        end = args["end"] or funnel_stats.today()
        start = args["start"] or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:  # only `from` given, after today
            end = start
        scope = principal().channels
        ranking = best_sellers.ranking(
            start,
            end,
            sort=args["sort"],
            limit=args["limit"],
            channel=args["channel"],
            channels=None if scope is None else sorted(scope),
        )
        return {
            "start": ranking.start,
            "end": ranking.end,
            "days": ranking.days,
            "sort": ranking.sort,
            "units": ranking.units,
            "sales": ranking.sales,
            "skus": ranking.skus,
            "items": [
                {
                    "sku": row.sku_code,
                    "product_id": row.product_id,
                    "title": row.title,
                    "variant": row.variant,
                    "units": row.units,
                    "sales": row.sales,
                    "orders": row.orders,
                    "by_channel": row.by_channel,
                    "available": row.available,
                    "days_left": row.days_left,
                }
                for row in ranking.rows
            ],
        }
