"""What the REST API reads and does with segments: live counts, members, CSV, new segments.

A segment is shared by the whole shop, as in the back office; its count and members are
those of the customers the key sees (services.platform_crm.visible).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from koudai_flask.errors import PermissionDenied, ValidationError
from koudai_flask.models import Customer, Segment
from koudai_flask.services import customer_csv, segments, tag_rules
from koudai_flask.services.api_keys import Principal
from koudai_flask.services.platform_crm import CustomerSummary, rule_error, summaries, visible
from koudai_flask.services.platform_reads import Page, _page
from koudai_flask.services.transaction import current_session

#: A key needs one of these, besides ``customers.view``, to create a segment (as staff do).
EDITOR_SCOPES = ("customers.edit", "marketing.manage")


@dataclass(frozen=True)
class SegmentView:
    id: int
    name: str
    rule: str
    filters: dict[str, str]
    count: int
    created_by: str
    created_at: datetime
    updated_at: datetime


def _count(who: Principal, rule: str) -> int:
    query = visible(who, rule=rule).order_by(None).with_only_columns(Customer.id)
    return int(current_session().scalar(select(func.count()).select_from(query.subquery())) or 0)


def _view(who: Principal, segment: Segment) -> SegmentView:
    try:
        count = _count(who, segment.rule)
    except tag_rules.RuleError:  # saved by an older version with other fields
        count = 0
    return SegmentView(
        segment.id,
        segment.name,
        segment.rule,
        dict(segment.filters),
        count,
        segment.created_by,
        segment.created_at,
        segment.updated_at,
    )


def all_segments(who: Principal) -> list[SegmentView]:
    visible(who)  # the owner still holds customers.view
    return [_view(who, segment) for segment in segments.all_segments()]


def segment(who: Principal, segment_id: int) -> SegmentView:
    visible(who)
    return _view(who, segments.get(segment_id))


def create(who: Principal, data: dict[str, Any]) -> SegmentView:
    """A segment from the admin form's fields; a bad rule is 422 and saves nothing."""
    if not any(who.allows(scope) for scope in EDITOR_SCOPES):
        raise PermissionDenied(
            "this API key lacks the scope 'customers.edit' or 'marketing.manage'"
        )
    typed = {
        key: value.isoformat() if isinstance(value, date) else str(value)
        for key, value in data.items()
        if key != "name"
    }
    try:
        saved = segments.save(who.user_id, typed, name=data["name"])
    except tag_rules.RuleError as exc:
        raise rule_error(exc) from None
    except IntegrityError:  # a concurrent request took the name first
        raise ValidationError(
            f"a segment named {data['name']!r} exists", {"name": ["taken"]}
        ) from None
    return _view(who, saved)


def members(
    who: Principal, segment_id: int, *, cursor: str | None, limit: int
) -> Page[CustomerSummary]:
    """The segment's customers the key sees, newest first."""
    found = segments.get(segment_id)
    return summaries(_page(visible(who, rule=found.rule), Customer.id, cursor, limit, newest=True))


def export(who: Principal, segment_id: int) -> tuple[Segment, Iterator[str]]:
    """The segment as CSV rows (the back office's columns), within the key's reach."""
    found = segments.get(segment_id)
    rows = customer_csv.export_customers(
        who.user_id,
        rule=found.rule,
        channels=sorted(who.channels) if who.channels is not None else None,
    )
    return found, rows
