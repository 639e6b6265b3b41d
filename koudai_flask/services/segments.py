"""Segments: saved filters over customers (tags, RFM, channel, city, dates, spend).

A segment is a rule of services.tag_rules. The admin form builds the rule from plain
fields (``rule_from_filters``) and may add a hand-written rule; both are kept, so the form
can be shown again as it was filled in. Counts are live: a segment is evaluated whenever
it is asked for, never cached.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, func, select

from koudai_flask.errors import NotFound, PermissionDenied, ValidationError
from koudai_flask.models import Customer, Segment
from koudai_flask.services import staff, tag_rules
from koudai_flask.services.transaction import current_session, unit_of_work

# Form field -> (rule field, operator). Spend is typed in yuan and compared in fen.
FILTER_FIELDS: dict[str, tuple[str, str]] = {
    "tag": ("tag", "=="),
    "channel": ("channel", "=="),
    "city": ("city", "=="),
    "min_spent_yuan": ("total_spent", ">="),
    "max_spent_yuan": ("total_spent", "<="),
    "min_orders": ("order_count", ">="),
    "min_rfm_r": ("rfm_r", ">="),
    "min_rfm_f": ("rfm_f", ">="),
    "min_rfm_m": ("rfm_m", ">="),
    "last_order_from": ("last_order_date", ">="),
    "last_order_to": ("last_order_date", "<="),
    "first_seen_from": ("created_date", ">="),
    "first_seen_to": ("created_date", "<="),
}
_NUMBERS = {"min_spent_yuan", "max_spent_yuan", "min_orders", "min_rfm_r", "min_rfm_f", "min_rfm_m"}
_DATES = {"last_order_from", "last_order_to", "first_seen_from", "first_seen_to"}


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rule_from_filters(filters: dict[str, Any]) -> str:
    """The rule the form's fields stand for (all of them must hold), plus ``rule`` if any."""
    parts: list[str] = []
    for key, (field, op) in FILTER_FIELDS.items():
        raw = filters.get(key)
        value = str(raw).strip() if raw is not None else ""
        if not value:
            continue
        if key in _NUMBERS:
            if not value.isdigit() or len(value) > 10:
                raise ValidationError(
                    f"{key} must be a whole number",
                    {key: ["not a number"]},
                    reason="filter_number",
                    detail={"field": key},
                )
            number = int(value) * 100 if key.endswith("_yuan") else int(value)
            parts.append(f"{field} {op} {number}")
        elif key in _DATES:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValidationError(
                    f"{key} must be a date YYYY-MM-DD",
                    {key: ["bad date"]},
                    reason="filter_date",
                    detail={"field": key},
                ) from None
            parts.append(f"{field} {op} {quote(value)}")
        else:
            if len(value) > 100:
                raise ValidationError(
                    f"{key} is at most 100 characters",
                    {key: ["too long"]},
                    reason="filter_long",
                    detail={"field": key},
                )
            parts.append(f"{field} {op} {quote(value)}")
    extra = str(filters.get("rule") or "").strip()
    if extra:
        tag_rules.validate(extra)
        parts.append(f"({extra})" if parts else extra)
    if not parts:
        raise ValidationError(
            "a segment needs at least one filter or a rule",
            {"rule": ["empty"]},
            reason="segment_empty",
        )
    return tag_rules.validate(" and ".join(parts))


def _clean_name(name: str) -> str:
    name = " ".join(str(name or "").split())
    if not 1 <= len(name) <= 80:
        raise ValidationError(
            "a segment name is 1 to 80 characters", {"name": ["invalid"]}, reason="segment_name"
        )
    return name


def require_editor(user_id: str) -> None:
    """Segments are kept by those who edit customers or run the marketing."""
    if not (staff.can(user_id, "customers.edit") or staff.can(user_id, "marketing.manage")):
        raise PermissionDenied(f"staff {user_id} may not change segments")


def save(
    user_id: str, filters: dict[str, Any], *, name: str, segment_id: int | None = None
) -> Segment:
    """Create or change a segment; a bad rule saves nothing."""
    name = _clean_name(name)
    kept = {k: str(v).strip() for k, v in filters.items() if k in FILTER_FIELDS or k == "rule"}
    kept = {k: v for k, v in kept.items() if v}
    rule = rule_from_filters(kept)
    with unit_of_work() as session:
        require_editor(user_id)
        clash = session.scalar(select(Segment.id).where(Segment.name == name))
        if clash is not None and clash != segment_id:
            raise ValidationError(
                f"a segment named {name!r} exists",
                {"name": ["taken"]},
                reason="segment_taken",
                detail={"name": name},
            )
        if segment_id is None:
            segment = Segment(name=name, rule=rule, filters=kept, created_by=f"staff:{user_id}")
            session.add(segment)
            before = None
        else:
            segment = get(segment_id)
            before = {"name": segment.name, "rule": segment.rule}
            segment.name, segment.rule, segment.filters = name, rule, kept
        session.flush()
        staff.audit(
            f"staff:{user_id}",
            "customers.segment",
            "segment",
            str(segment.id),
            before,
            {"name": name, "rule": rule},
        )
        return segment


def delete(user_id: str, segment_id: int) -> None:
    with unit_of_work() as session:
        require_editor(user_id)
        # Locked: a second delete at once waits, then finds no segment (NotFound).
        segment = session.get(Segment, segment_id, with_for_update=True, populate_existing=True)
        if segment is None:
            raise NotFound(f"unknown segment {segment_id}")
        staff.audit(
            f"staff:{user_id}",
            "customers.segment_delete",
            "segment",
            str(segment_id),
            {"name": segment.name, "rule": segment.rule},
            None,
        )
        session.delete(segment)


def get(segment_id: int) -> Segment:
    segment = current_session().get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"unknown segment {segment_id}")
    return segment


def all_segments() -> list[Segment]:
    return list(current_session().scalars(select(Segment).order_by(Segment.name)))


def rule_query(rule: str) -> Select[Any]:
    """The customers a rule holds for, as ``SELECT Customer``."""
    return select(Customer).where(Customer.id.in_(tag_rules.matching(rule)))


def customer_ids(segment_id: int) -> list[int]:
    """Every customer in the segment now (no staff scope: for campaigns and jobs)."""
    segment = get(segment_id)
    ids = current_session().scalars(tag_rules.matching(segment.rule))
    return sorted(int(i) for i in ids)


def count(segment_id: int) -> int:
    segment = get(segment_id)
    query = tag_rules.matching(segment.rule)
    return int(current_session().scalar(select(func.count()).select_from(query.subquery())) or 0)
