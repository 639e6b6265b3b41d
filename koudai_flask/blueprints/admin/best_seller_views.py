"""Best sellers (热销商品, ``orders.view``): the SKUs sold in some days, best first, with
their units per channel and the days the default location's stock lasts at that pace.

Filters: a date range (the shop's days; the last 30 by default), a channel, and the order
(most units, most money, or what runs out first). Within the staff member's channel scope.
The same ranking, every SKU that sold, downloads as CSV (``orders.export``).
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from koudai_flask.blueprints.admin.common import acting, staff_required
from koudai_flask.blueprints.admin.funnel_views import report_days
from koudai_flask.models import Channel
from koudai_flask.services import best_sellers, staff
from koudai_flask.services.customer_csv import text_cell
from koudai_flask.services.product_form import fen_to_yuan
from koudai_flask.services.transaction import current_session

DEFAULT_DAYS = 30
SHOWN = 50


def _ranking(limit: int | None) -> tuple[best_sellers.Ranking, list[str], str | None]:
    """The ranking the request's filters ask for, the channels the member may pick, and the
    channel picked (None: every channel in scope)."""
    start, end = report_days(request.args, DEFAULT_DAYS)
    sort = request.args.get("sort", "units")
    if sort not in best_sellers.SORTS:
        sort = "units"
    scope = staff.visible_channels(acting())
    names = [
        name
        for name in current_session().scalars(select(Channel.name).order_by(Channel.name))
        if scope is None or name in scope
    ]
    channel = request.args.get("channel") or None
    if channel not in names:
        channel = None
    ranking = best_sellers.ranking(
        start, end, sort=sort, limit=limit, channel=channel, channels=scope
    )
    return ranking, names, channel


def ranking_csv(ranking: best_sellers.Ranking) -> str:
    """The ranking as CSV text: a column of units per channel after the totals."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["sku", "product", "variant", "units", "sales_yuan", "orders", "available", "days_left"]
        + [f"units_{name}" for name in ranking.channels]
    )
    for row in ranking.rows:
        writer.writerow(
            [
                text_cell(row.sku_code),
                text_cell(row.title),
                text_cell(row.variant),
                row.units,
                fen_to_yuan(row.sales),
                row.orders,
            ]
            + [row.available, f"{row.days_left:.1f}"]
            + [row.by_channel.get(name, 0) for name in ranking.channels]
        )
    return "\ufeff" + out.getvalue()  # a BOM, so spreadsheet programs read UTF-8 Chinese


def register(bp: Blueprint) -> None:
    @bp.get("/best-sellers")
    @staff_required("orders.view")
    def best_sellers_page() -> ResponseReturnValue:
        ranking, names, channel = _ranking(SHOWN)
        return render_template(
            "koudai/admin/best_sellers.html",
            ranking=ranking,
            channels=names,
            filters={"from": ranking.start, "to": ranking.end, "channel": channel},
            sorts=best_sellers.SORTS,
        )

    @bp.get("/best-sellers.csv")
    @staff_required("orders.export")
    def best_sellers_csv() -> ResponseReturnValue:
        ranking = _ranking(None)[0]
        name = f"best-sellers-{ranking.start.isoformat()}-{ranking.end.isoformat()}"
        return Response(
            ranking_csv(ranking),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={name}.csv"},
        )
