"""Background jobs (``staff.manage``, whole shop): the outbox's health and its dead events.

What waits for the job system, how long the oldest has waited (a stopped worker shows here
first), and every event whose handlers gave up, with its last error: send it again once the
cause is fixed, or discard it. A member scoped to some channels gets 403: events belong to
the whole shop. Ids in URLs are read after the permission check.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from koudai_flask.blueprints.admin.channel_common import lag_text, refused
from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import outbox_review

PAYLOAD_SHOWN = 240  # characters of an event's payload shown in the list


def _whole_shop() -> None:
    if acting().channels is not None:
        abort(403)


def _event_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        abort(404)
    return int(raw)


def payload_text(payload: dict[str, object]) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= PAYLOAD_SHOWN else text[: PAYLOAD_SHOWN - 1] + "…"


def _back() -> ResponseReturnValue:
    topic = request.form.get("topic", "").strip()
    return redirect(url_for(".jobs_page", topic=topic or None), 303)


def _act(raw_id: str, action: Callable[[int], None], done: str) -> ResponseReturnValue:
    """Run ``action`` on one dead event for a POST; its refusal or ``done`` is flashed."""
    checked_form()
    _whole_shop()
    try:
        action(_event_id(raw_id))
    except KoudaiError as exc:
        refused(exc)
    else:
        flash(done, "success")
    return _back()


def register(bp: Blueprint) -> None:
    @bp.get("/jobs")
    @staff_required("staff.manage")
    def jobs_page() -> ResponseReturnValue:
        _whole_shop()
        topic = request.args.get("topic", "").strip()[:64]
        health = outbox_review.health()
        return render_template(
            "koudai/admin/jobs.html",
            health=health,
            waited=lag_text(health.oldest_waiting) if health.oldest_waiting else None,
            events=outbox_review.dead_events(topic=topic or None),
            topic=topic,
            mode=current_app.config["KOUDAI_JOBS"],
            payload_text=payload_text,
            limit=outbox_review.SEND_AGAIN_LIMIT,
        )

    @bp.post("/jobs/<event_id>/send-again")
    @staff_required("staff.manage")
    def job_send_again(event_id: str) -> ResponseReturnValue:
        return _act(
            event_id,
            lambda number: outbox_review.send_again(number, actor=actor_id()),
            _k("Event %(id)s sent again.", id=event_id),
        )

    @bp.post("/jobs/<event_id>/discard")
    @staff_required("staff.manage")
    def job_discard(event_id: str) -> ResponseReturnValue:
        note = request.form.get("note", "")
        return _act(
            event_id,
            lambda number: outbox_review.discard(number, actor=actor_id(), note=note),
            _k("Event %(id)s discarded: it will not be sent.", id=event_id),
        )

    @bp.post("/jobs/send-again")
    @staff_required("staff.manage")
    def jobs_send_all_again() -> ResponseReturnValue:
        checked_form()
        _whole_shop()
        topic = request.form.get("topic", "").strip()[:64]
        sent = outbox_review.send_all_again(actor=actor_id(), topic=topic or None)
        if sent:
            flash(_k("%(n)d event(s) sent again.", n=sent), "success")
        else:
            flash(_k("No dead event to send."), "error")
        return _back()
