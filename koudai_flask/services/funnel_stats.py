"""Funnel statistics: daily rollups, the funnel of a date range, and sales per channel.

A day is a day in the shop's time zone (``KOUDAI_TIMEZONE``). :func:`rollup_day`
recomputes one day's ``FunnelDaily`` rows from the raw events (delete and insert in one
transaction, so running it again gives the same rows); a periodic job runs it for today
and yesterday. :func:`funnel` reads rollups for past days and counts today, and any past
day that was never rolled up, from the raw events.

Conversion rates are on visitors (distinct people per day, summed over the days): a
buyer who views five products is one visitor of ``product_viewed``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, literal_column, select
from sqlalchemy.exc import IntegrityError

from koudai_flask.config import config_value
from koudai_flask.models import FunnelDaily, FunnelEvent, Order
from koudai_flask.models.base import utcnow
from koudai_flask.models.funnel import FUNNEL_STEPS
from koudai_flask.services import funnel as recording
from koudai_flask.services.transaction import current_session, unit_of_work

MAX_DAYS = 366


@dataclass(frozen=True)
class Step:
    event: str
    events: int
    visitors: int
    amount: int
    # visitors of this step / visitors of the previous step; None when that is 0.
    rate: float | None


@dataclass(frozen=True)
class Funnel:
    start: date
    end: date
    steps: list[Step]

    def step(self, event: str) -> Step:
        return next(s for s in self.steps if s.event == event)

    @property
    def empty(self) -> bool:
        return not any(s.events for s in self.steps)


@dataclass(frozen=True)
class Sales:
    days: list[date]
    # channel → revenue in fen per day of ``days``
    series: dict[str, list[int]]
    orders: dict[str, int]

    @property
    def totals(self) -> dict[str, int]:
        return {channel: sum(values) for channel, values in self.series.items()}


def zone() -> ZoneInfo:
    return ZoneInfo(config_value("TIMEZONE"))


def today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(zone()).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=zone())
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone())
    return start, end


def _visitors() -> Any:
    return func.count(func.distinct(func.nullif(FunnelEvent.visitor, "")))


# -- rollups -----------------------------------------------------------------------------------


def rollup_day(day: date) -> int:
    """Recompute one day's rollup rows from its events; returns the rows written."""
    start, end = day_bounds(day)
    campaign = func.coalesce(FunnelEvent.campaign_id, literal_column("0"))
    for attempt in (1, 2):
        try:
            with unit_of_work() as session:
                session.execute(delete(FunnelDaily).where(FunnelDaily.day == day))
                rows = session.execute(
                    select(
                        campaign,
                        FunnelEvent.channel,
                        FunnelEvent.event,
                        func.count(),
                        _visitors(),
                        func.coalesce(func.sum(FunnelEvent.amount), 0),
                    )
                    .where(FunnelEvent.occurred_at >= start, FunnelEvent.occurred_at < end)
                    .group_by(campaign, FunnelEvent.channel, FunnelEvent.event)
                ).all()
                now = utcnow()
                values = [
                    {
                        "day": day,
                        "campaign_id": int(campaign_id),
                        "channel": channel,
                        "event": event,
                        "events": int(events),
                        "visitors": int(visitors),
                        "amount": int(amount),
                        "computed_at": now,
                    }
                    for campaign_id, channel, event, events, visitors, amount in rows
                ]
                if values:
                    session.execute(insert(FunnelDaily), values)
                return len(values)
        except IntegrityError:
            if attempt == 2:  # two recomputes of one day at once: the other one's rows stand
                raise
    raise AssertionError("unreachable")


def rollup_recent(now: datetime | None = None) -> int:
    """Write this process's buffered events, then recompute today and yesterday."""
    recording.flush()
    day = today(now)
    return rollup_day(day - timedelta(days=1)) + rollup_day(day)


# -- reading -----------------------------------------------------------------------------------


Totals = dict[str, list[int]]  # event → [events, visitors, amount]


def _add(totals: Totals, rows: Iterable[Any]) -> None:
    for event, events, visitors, amount in rows:
        entry = totals.setdefault(event, [0, 0, 0])
        entry[0] += int(events or 0)
        entry[1] += int(visitors or 0)
        entry[2] += int(amount or 0)


def funnel(
    start: date,
    end: date,
    *,
    campaign_id: int | None = None,
    channel: str | None = None,
    now: datetime | None = None,
) -> Funnel:
    """The funnel of ``start``..``end`` (inclusive), for one campaign and/or channel."""
    if end < start:
        start, end = end, start
    start = max(start, end - timedelta(days=MAX_DAYS - 1))
    recording.flush()  # what this process saw counts at once
    session = current_session()
    current = today(now)
    totals: Totals = {}
    last_past = min(end, current - timedelta(days=1))
    rolled: set[date] = set()
    if start <= last_past:
        conditions = [FunnelDaily.day >= start, FunnelDaily.day <= last_past]
        if campaign_id is not None:
            conditions.append(FunnelDaily.campaign_id == campaign_id)
        if channel is not None:
            conditions.append(FunnelDaily.channel == channel)
        _add(
            totals,
            session.execute(
                select(
                    FunnelDaily.event,
                    func.sum(FunnelDaily.events),
                    func.sum(FunnelDaily.visitors),
                    func.sum(FunnelDaily.amount),
                )
                .where(*conditions)
                .group_by(FunnelDaily.event)
            ),
        )
        rolled = set(
            session.scalars(
                select(FunnelDaily.day)
                .where(FunnelDaily.day >= start, FunnelDaily.day <= last_past)
                .distinct()
            )
        )
    day = start
    while day <= min(end, current):
        if day not in rolled:  # today, or a day no rollup has covered yet
            _add(totals, _live(day, campaign_id, channel))
        day += timedelta(days=1)
    session.rollback()
    return Funnel(start, end, _steps(totals))


def _live(day: date, campaign_id: int | None, channel: str | None) -> list[Any]:
    day_start, day_end = day_bounds(day)
    conditions = [FunnelEvent.occurred_at >= day_start, FunnelEvent.occurred_at < day_end]
    if campaign_id is not None:
        conditions.append(FunnelEvent.campaign_id == campaign_id)
    if channel is not None:
        conditions.append(FunnelEvent.channel == channel)
    return list(
        current_session().execute(
            select(
                FunnelEvent.event,
                func.count(),
                _visitors(),
                func.coalesce(func.sum(FunnelEvent.amount), 0),
            )
            .where(*conditions)
            .group_by(FunnelEvent.event)
        )
    )


def _steps(totals: Totals) -> list[Step]:
    steps: list[Step] = []
    previous: int | None = None
    for event in FUNNEL_STEPS:
        events, visitors, amount = totals.get(event, [0, 0, 0])
        rate = visitors / previous if previous else None
        steps.append(Step(event, events, visitors, amount, rate))
        previous = visitors
    return steps


def sales_by_channel(start: date, end: date, *, channels: list[str] | None = None) -> Sales:
    """Paid orders' totals per channel and day (``channels``: the staff member's scope)."""
    if end < start:
        start, end = end, start
    start = max(start, end - timedelta(days=MAX_DAYS - 1))
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    query = select(Order.channel, Order.paid_at, Order.total).where(
        Order.paid_at >= day_bounds(start)[0], Order.paid_at < day_bounds(end)[1]
    )
    if channels is not None:
        query = query.where(Order.channel.in_(channels))
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    orders: dict[str, int] = defaultdict(int)
    local = zone()
    session = current_session()
    for channel, paid_at, total in session.execute(query.execution_options(yield_per=1000)):
        if paid_at is None:
            continue
        slot = index.get(paid_at.astimezone(local).date())
        if slot is not None:
            series[channel][slot] += int(total)
            orders[channel] += 1
    session.rollback()
    return Sales(days, dict(sorted(series.items())), dict(orders))
