"""The funnel dashboard (``marketing.manage``): push → visit → cart → order → payment.

Filters: a date range (the shop's days), a campaign and a channel. Two charts, drawn as
inline SVG on the server (no script, no CDN): the funnel's bars with the conversion from
each step to the next, and paid sales per channel over the same days, within the staff
member's channel scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from koudai_flask.blueprints.admin.common import acting, staff_required
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.models import Campaign, Channel
from koudai_flask.services import funnel_stats, staff
from koudai_flask.services.transaction import current_session

STEP_LABELS = {
    "push_sent": _l("Messages sent"),
    "push_clicked": _l("Links clicked"),
    "visit": _l("Visits"),
    "product_viewed": _l("Product views"),
    "cart_added": _l("Added to cart"),
    "checkout_started": _l("Checkouts started"),
    "order_placed": _l("Orders placed"),
    "order_paid": _l("Orders paid"),
}
DEFAULT_DAYS = 7
PALETTE = ("#e4393c", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")

# Chart geometry, in SVG user units.
FUNNEL_WIDTH, FUNNEL_LABEL, FUNNEL_ROW = 640, 150, 34
SALES_WIDTH, SALES_HEIGHT, SALES_LEFT, SALES_BOTTOM = 640, 220, 70, 24


@dataclass(frozen=True)
class Bar:
    event: str
    label: str
    events: int
    visitors: int
    rate: str  # "42.0%" or "" for the first step or after an empty one
    y: int
    width: int


@dataclass(frozen=True)
class Line:
    channel: str
    color: str
    points: str  # "x,y x,y ..." for <polyline>
    total: int
    orders: int


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def funnel_chart(funnel: funnel_stats.Funnel) -> dict[str, Any]:
    """Bars of the funnel, their width proportional to the step's visitors."""
    top = max((s.visitors for s in funnel.steps), default=0) or 1
    room = FUNNEL_WIDTH - FUNNEL_LABEL - 90
    bars = [
        Bar(
            event=s.event,
            label=str(STEP_LABELS[s.event]),
            events=s.events,
            visitors=s.visitors,
            rate=percent(s.rate),
            y=n * FUNNEL_ROW,
            width=round(room * s.visitors / top),
        )
        for n, s in enumerate(funnel.steps)
    ]
    return {
        "bars": bars,
        "width": FUNNEL_WIDTH,
        "height": FUNNEL_ROW * len(bars),
        "label_width": FUNNEL_LABEL,
        "row": FUNNEL_ROW,
    }


def sales_chart(sales: funnel_stats.Sales) -> dict[str, Any]:
    """One polyline per channel over the days; the y axis runs from 0 to the best day."""
    top = max((v for values in sales.series.values() for v in values), default=0) or 1
    plot_w = SALES_WIDTH - SALES_LEFT - 10
    plot_h = SALES_HEIGHT - SALES_BOTTOM - 10
    count = len(sales.days)

    def x(n: int) -> int:
        return SALES_LEFT + (round(plot_w * n / (count - 1)) if count > 1 else plot_w // 2)

    def y(value: int) -> int:
        return 10 + plot_h - round(plot_h * value / top)

    lines = [
        Line(
            channel=channel,
            color=PALETTE[n % len(PALETTE)],
            points=" ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values)),
            total=sum(values),
            orders=sales.orders.get(channel, 0),
        )
        for n, (channel, values) in enumerate(sales.series.items())
    ]
    return {
        "lines": lines,
        "width": SALES_WIDTH,
        "height": SALES_HEIGHT,
        "left": SALES_LEFT,
        "baseline": y(0),
        "top_y": y(top),
        "top": top if sales.series else 0,
        "first_day": sales.days[0] if sales.days else None,
        "last_day": sales.days[-1] if sales.days else None,
        "right": SALES_WIDTH - 10,
    }


def _day(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


def report_days(args: Mapping[str, str], default_days: int) -> tuple[date, date]:
    """A report's ``from`` and ``to`` (the shop's days, both included): ``to`` defaults to
    today and ``from`` to ``default_days`` before it; a value that is not a day is taken as
    missing, swapped ends are put in order, and at most ``MAX_DAYS`` are kept back from
    ``to``."""
    end = _day(args.get("to"), funnel_stats.today())
    start = _day(args.get("from"), end - timedelta(days=default_days - 1))
    if start > end:
        start, end = end, start
    return max(start, end - timedelta(days=funnel_stats.MAX_DAYS - 1)), end


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def register(bp: Blueprint) -> None:
    @bp.get("/funnel")
    @staff_required("marketing.manage")
    def funnel_dashboard() -> ResponseReturnValue:
        start, end = report_days(request.args, DEFAULT_DAYS)
        campaign_id = _int(request.args.get("campaign"))
        scope = staff.visible_channels(acting())
        session = current_session()
        channel_names = [
            name
            for name in session.scalars(select(Channel.name).order_by(Channel.name))
            if scope is None or name in scope
        ]
        channel = request.args.get("channel") or None
        if channel is not None and channel not in channel_names:
            channel = None
        campaign_rows = session.execute(
            select(Campaign.id, Campaign.name).order_by(Campaign.id.desc()).limit(200)
        ).all()
        result = funnel_stats.funnel(start, end, campaign_id=campaign_id, channel=channel)
        sales = funnel_stats.sales_by_channel(start, end, channels=scope)
        return render_template(
            "koudai/admin/funnel.html",
            filters={"from": start, "to": end, "campaign": campaign_id, "channel": channel},
            campaigns=campaign_rows,
            channels=channel_names,
            funnel=result,
            chart=funnel_chart(result),
            sales=sales,
            sales_chart=sales_chart(sales),
            step_labels=STEP_LABELS,
            percent=percent,
        )
