"""The audit log: who changed what, newest first, with filters (``audit.view``).

Each entry's before and after are shown as a compact diff: only the fields that changed,
nested ones by their dotted path (``skus.TEE-RED-S.price``).
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from koudai_flask.blueprints.admin.common import staff_required
from koudai_flask.config import config_value
from koudai_flask.models import AuditEntry
from koudai_flask.services.transaction import current_session

PER_PAGE = 50
_MISSING = object()


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{path}.{key}" if path else str(key)))
        return flat
    return {path: value}


def _show(value: Any) -> str:
    if value is _MISSING:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 160 else text[:159] + "…"


def changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[tuple[str, str, str]]:
    """(field, before, after) for every field that differs; "" where it did not exist."""
    old, new = _flatten(before or {}), _flatten(after or {})
    old.pop("", None)
    new.pop("", None)
    fields = dict.fromkeys([*old, *new])
    return [
        (name, _show(old.get(name, _MISSING)), _show(new.get(name, _MISSING)))
        for name in fields
        if old.get(name, _MISSING) != new.get(name, _MISSING)
    ]


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(config_value("TIMEZONE")))


def register(bp: Blueprint) -> None:
    @bp.get("/audit")
    @staff_required("audit.view")
    def audit_list() -> ResponseReturnValue:
        args = request.args
        filters = {
            "actor": args.get("actor", "").strip()[:80],
            "action": args.get("action", "").strip(),
            "object_type": args.get("object_type", "").strip(),
            "object_id": args.get("object_id", "").strip()[:64],
            "from": args.get("from", ""),
            "to": args.get("to", ""),
        }
        conditions = []
        if filters["actor"]:
            conditions.append(
                func.lower(AuditEntry.actor).contains(filters["actor"].lower(), autoescape=True)
            )
        for name in ("action", "object_type", "object_id"):
            if filters[name]:
                conditions.append(getattr(AuditEntry, name) == filters[name])
        start, end = _day(filters["from"]), _day(filters["to"])
        if start:
            conditions.append(AuditEntry.created_at >= _day_start(start))
        if end:
            conditions.append(AuditEntry.created_at < _day_start(end) + timedelta(days=1))
        try:
            page = max(1, int(args.get("page", "1")))
        except ValueError:
            page = 1
        session = current_session()
        total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions))
        entries = session.scalars(
            select(AuditEntry)
            .where(*conditions)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        ).all()
        return render_template(
            "koudai/admin/audit.html",
            entries=entries,
            changes=changes,
            filters=filters,
            actions=session.scalars(select(AuditEntry.action).distinct().order_by("action")).all(),
            object_types=session.scalars(
                select(AuditEntry.object_type).distinct().order_by("object_type")
            ).all(),
            total=total or 0,
            page=page,
            pages=max(1, -(-(total or 0) // PER_PAGE)),
        )
