"""What the REST API reads and does with segments: live counts, members, CSV, and saving,
changing and deleting them.

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

#: A key needs one of these, besides ``customers.view``, to save, change or delete a
#: segment (as staff do).
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


def _require_editor(who: Principal) -> None:
    if not any(who.allows(scope) for scope in EDITOR_SCOPES):
        raise PermissionDenied(
            "this API key lacks the scope 'customers.edit' or 'marketing.manage'"
        )


def save(who: Principal, data: dict[str, Any], segment_id: int | None = None) -> SegmentView:
    """A segment from the admin form's fields, or those fields replacing segment
    ``segment_id``'s; a bad rule or a taken name is 422 and saves nothing."""
    _require_editor(who)
    if segment_id is not None:
        segments.get(segment_id)  # 404 before anything else
    typed = {
        key: value.isoformat() if isinstance(value, date) else str(value)
        for key, value in data.items()
        if key != "name"
    }
    try:
        saved = segments.save(who.user_id, typed, name=data["name"], segment_id=segment_id)
    except tag_rules.RuleError as exc:
        raise rule_error(exc) from None
    except IntegrityError:  # a concurrent request took the name first
        raise ValidationError(
            f"a segment named {data['name']!r} exists", {"name": ["taken"]}
        ) from None
    return _view(who, saved)


def delete(who: Principal, segment_id: int) -> None:
    """Delete a segment (audited); a sent campaign's recipients were fixed when it was sent."""
    _require_editor(who)
    segments.delete(who.user_id, segment_id)


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
