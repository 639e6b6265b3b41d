"""Segments: saved filters with live counts (within the member's scope) and CSV export."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from koudai_flask.blueprints.admin import rule_help
from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Channel, Segment
from koudai_flask.services import backoffice, customer_csv, segments, staff, tags
from koudai_flask.services.transaction import current_session

PREVIEW = 50


def _visible_count(rule: str) -> int:
    query = backoffice.customer_query(acting(), rule=rule).order_by(None)
    return int(current_session().scalar(select(func.count()).select_from(query.subquery())) or 0)


def _segment_or_404(segment_id: int) -> Segment:
    try:
        return segments.get(segment_id)
    except NotFound:
        abort(404)


def _form_page(
    segment: Segment | None, typed: dict[str, Any], status: int = 200
) -> ResponseReturnValue:
    preview: list[Any] = []
    count = None
    if segment is not None and status == 200:
        count = _visible_count(segment.rule)
        query = backoffice.customer_query(acting(), rule=segment.rule).limit(PREVIEW)
        preview = list(current_session().scalars(query))
    scope = staff.visible_channels(acting())
    channel_names = [
        name
        for name in current_session().scalars(select(Channel.name).order_by(Channel.name))
        if scope is None or name in scope
    ]
    return render_template(
        "koudai/admin/segment.html",
        segment=segment,
        typed=typed,
        count=count,
        preview=preview,
        fields=rule_help.rule_fields(),
        all_tags=[t.name for t, _ in tags.all_tags()],
        channels=channel_names,
        can_edit=_can_edit(),
    ), status


def _can_edit() -> bool:
    try:
        segments.require_editor(actor_id())
    except KoudaiError:
        return False
    return True


def register(bp: Blueprint) -> None:
    @bp.get("/customers/segments")
    @staff_required("customers.view")
    def segments_list() -> ResponseReturnValue:
        rows = [(s, _visible_count(s.rule)) for s in segments.all_segments()]
        return render_template("koudai/admin/segments.html", segments=rows, can_edit=_can_edit())

    @bp.get("/customers/segments/new")
    @staff_required("customers.view")
    def segment_new() -> ResponseReturnValue:
        return _form_page(None, {})

    @bp.get("/customers/segments/<int:segment_id>")
    @staff_required("customers.view")
    def segment_detail(segment_id: int) -> ResponseReturnValue:
        segment = _segment_or_404(segment_id)
        return _form_page(segment, {"name": segment.name, **segment.filters})

    @bp.post("/customers/segments")
    @bp.post("/customers/segments/<int:segment_id>")
    @staff_required("customers.view")
    def segment_save(segment_id: int | None = None) -> ResponseReturnValue:
        checked_form()
        segment = _segment_or_404(segment_id) if segment_id is not None else None
        typed = {k: v for k, v in request.form.items() if k != "csrf_token"}
        try:
            saved = segments.save(
                actor_id(), typed, name=typed.get("name", ""), segment_id=segment_id
            )
        except KoudaiError as exc:
            if exc.http_status == 403:
                abort(403)
            flash(refusal_text(exc), "error")
            return _form_page(segment, typed, exc.http_status)
        flash(_k("Segment saved."), "success")
        return redirect(url_for(".segment_detail", segment_id=saved.id)), 303

    @bp.post("/customers/segments/<int:segment_id>/delete")
    @staff_required("customers.view")
    def segment_delete(segment_id: int) -> ResponseReturnValue:
        checked_form()
        _segment_or_404(segment_id)
        try:
            segments.delete(actor_id(), segment_id)
        except KoudaiError as exc:
            abort(exc.http_status if exc.http_status in (403, 404) else 400)
        flash(_k("Segment deleted."), "success")
        return redirect(url_for(".segments_list")), 303

    @bp.get("/customers/segments/<int:segment_id>/export.csv")
    @staff_required("customers.export")
    def segment_export(segment_id: int) -> ResponseReturnValue:
        segment = _segment_or_404(segment_id)
        rows = customer_csv.export_customers(actor_id(), rule=segment.rule)
        return Response(
            stream_with_context(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename=segment-{segment.id}.csv"},
        )
