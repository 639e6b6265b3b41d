"""Channels: each linked shop or ERP with its sync health, bindings, drift and dead letters.

Seeing them needs ``channels.view``; every change (a sync run now, pause, requeue, an
import) needs ``channels.manage``, is CSRF-checked and audited. A member scoped to some
channels sees and acts on those only. Linking and settings are in ``channel_link_views``,
SKU mapping in ``channel_mapping_views``; this module registers them too.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask.blueprints.admin import channel_link_views, channel_mapping_views
from koudai_flask.blueprints.admin.channel_common import (
    channel_or_404,
    labels,
    lag_text,
    refused,
    sync_jobs,
    to_channel,
)
from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.connectors.base import FETCH_STOCK
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import channel_admin, staff, sync_log
from koudai_flask.services.channels import ChannelInfo

PROGRESS_KEYS = ("state", "done", "total", "created", "updated", "bound", "unchanged", "message")


def import_progress(info: ChannelInfo) -> dict[str, Any]:
    """The catalog import's last known state, with a line for people (``text``)."""
    try:
        from koudai_flask.jobs import catalog_import
    except ImportError:
        progress: dict[str, Any] = {"state": "unavailable"}
    else:
        progress = dict(catalog_import.progress(info.id))
    numbers = {key: int(progress.get(key) or 0) for key in PROGRESS_KEYS[1:-1]}
    state = str(progress.get("state") or "idle")
    if state == "running":
        text = _k("Importing: %(done)d of %(total)d items.", **numbers)
    elif state == "done":
        text = _k(
            "Imported %(total)d items: %(created)d created, %(updated)d updated, "
            "%(bound)d bound, %(unchanged)d unchanged.",
            **numbers,
        )
    elif state == "failed":
        text = _k("The import failed: %(message)s", message=progress.get("message") or "")
    elif state == "unavailable":
        text = _k("The catalog import is not available in this installation.")
    else:
        text = _k("Not imported yet.")
    return {**{key: progress.get(key) for key in PROGRESS_KEYS}, "state": state, "text": text}


def _letter_id() -> int | None:
    raw = request.form.get("letter", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 12 else None


def register(bp: Blueprint) -> None:
    channel_link_views.register(bp)
    channel_mapping_views.register(bp)

    @bp.get("/channels")
    @staff_required("channels.view")
    def channels_list() -> ResponseReturnValue:
        member = acting()
        return render_template(
            "koudai/admin/channels.html",
            rows=channel_admin.channel_rows(staff.visible_channels(member)),
            lag_text=lag_text,
            can_add=member.channels is None and staff.can(member.user_id, "channels.manage"),
            **labels(),
        )

    @bp.get("/channels/<name>")
    @staff_required("channels.view")
    def channel_detail(name: str) -> ResponseReturnValue:
        info = channel_or_404(name)
        (row,) = channel_admin.channel_rows([name])
        cls = channel_admin.connector_of(info.kind)
        shown = channel_admin.masked(info.kind, info.settings)
        return render_template(
            "koudai/admin/channel.html",
            info=info,
            row=row,
            lag_text=lag_text,
            can_reconcile=FETCH_STOCK in cls.capabilities,
            can_sync=bool(sync_jobs(cls)),
            can_manage=staff.can(actor_id(), "channels.manage", channel=name),
            fields=[(f, shown.get(f.name)) for f in channel_admin.setting_fields(info.kind)],
            linked=info.kind != "taobao" or bool(info.settings.get("access_token")),
            listings=channel_admin.listing_rows(info.id),
            drift=channel_admin.drift_entries(name),
            letters=sync_log.dead_letters(name),
            progress=import_progress(info) if info.kind == "taobao" else None,
            form=FlaskForm(),
            **labels(),
        )

    def _run(name: str, jobs: list[str], action: str, done: str) -> ResponseReturnValue:
        from koudai_flask.jobs import sync

        info = channel_or_404(name, "channels.manage")
        if not info.active:
            flash(_k("The channel is paused: resume it first."), "error")
        elif info.status == "auth_expired":
            flash(_k("The shop's authorization expired: authorize it again first."), "error")
        elif not jobs:
            flash(_k("This channel sends its changes itself: there is nothing to fetch."), "error")
        else:
            try:
                channel_admin.record_action(actor_id(), name, action, {"jobs": jobs})
            except KoudaiError as exc:
                refused(exc)
                return to_channel(name)
            for job in jobs:  # after the commit: inline jobs run right here
                sync.schedule(info.id, job)
            flash(done, "success")
        return to_channel(name)

    @bp.post("/channels/<name>/sync")
    @staff_required("channels.manage")
    def channel_sync(name: str) -> ResponseReturnValue:
        checked_form()
        info = channel_or_404(name, "channels.manage")
        jobs = sync_jobs(channel_admin.connector_of(info.kind))
        return _run(name, jobs, "channels.sync", _k("Sync started."))

    @bp.post("/channels/<name>/reconcile")
    @staff_required("channels.manage")
    def channel_reconcile(name: str) -> ResponseReturnValue:
        checked_form()
        info = channel_or_404(name, "channels.manage")
        cls = channel_admin.connector_of(info.kind)
        jobs = ["reconcile"] if FETCH_STOCK in cls.capabilities else []
        return _run(name, jobs, "channels.reconcile", _k("Reconcile started."))

    def _set_active(name: str, active: bool) -> ResponseReturnValue:
        channel_or_404(name, "channels.manage")
        try:
            channel_admin.set_active(actor_id(), name, active)
        except KoudaiError as exc:
            refused(exc)
        else:
            flash(_k("Channel resumed.") if active else _k("Channel paused."), "success")
        return to_channel(name)

    @bp.post("/channels/<name>/pause")
    @staff_required("channels.manage")
    def channel_pause(name: str) -> ResponseReturnValue:
        checked_form()
        return _set_active(name, False)

    @bp.post("/channels/<name>/resume")
    @staff_required("channels.manage")
    def channel_resume(name: str) -> ResponseReturnValue:
        checked_form()
        return _set_active(name, True)

    def _letter_of(name: str) -> int | None:
        """The posted dead letter's id, 404 when it is another channel's."""
        channel_or_404(name, "channels.manage")
        letter = _letter_id()
        if letter is None:
            flash(_k("Choose a dead letter."), "error")
            return None
        if channel_admin.letter_channel(letter) != name:
            abort(404)
        return letter

    @bp.post("/channels/<name>/dead-letters/requeue")
    @staff_required("channels.manage")
    def channel_requeue(name: str) -> ResponseReturnValue:
        from koudai_flask.jobs import sync

        checked_form()
        letter = _letter_of(name)
        if letter is not None:
            try:
                sync.requeue(letter, by=f"staff:{actor_id()}")
                channel_admin.record_action(
                    actor_id(),
                    name,
                    "channels.requeue",
                    {"letter": letter},
                    object_type="sync_failure",
                    object_id=str(letter),
                )
            except KoudaiError as exc:
                refused(exc)
            else:
                flash(_k("Sent again."), "success")
        return to_channel(name, "dead-letters")

    @bp.post("/channels/<name>/dead-letters/discard")
    @staff_required("channels.manage")
    def channel_discard(name: str) -> ResponseReturnValue:
        checked_form()
        letter = _letter_of(name)
        if letter is not None:
            try:
                channel_admin.discard_letter(actor_id(), name, letter)
            except KoudaiError as exc:
                refused(exc)
            else:
                flash(_k("Dead letter discarded."), "success")
        return to_channel(name, "dead-letters")

    @bp.post("/channels/<name>/import")
    @staff_required("channels.manage")
    def channel_import(name: str) -> ResponseReturnValue:
        checked_form()
        info = channel_or_404(name, "channels.manage")
        if info.kind != "taobao":
            flash(_k("Only a Taobao shop's catalog can be imported."), "error")
            return to_channel(name)
        try:
            from koudai_flask.jobs.catalog_import import start_import
        except ImportError:
            flash(_k("The catalog import is not available in this installation."), "error")
            return to_channel(name)
        try:
            state = start_import(info.id)  # inline: it has run already; on RQ: queued
        except KoudaiError as exc:  # refused (a paused channel): nothing was started
            flash(refusal_text(exc), "error")
            return to_channel(name, "catalog-import")
        if state == "failed":
            flash(import_progress(info)["text"], "error")
        elif state == "done":
            flash(_k("Catalog imported."), "success")
        else:
            flash(_k("Catalog import started."), "success")
        try:
            channel_admin.record_action(
                actor_id(), name, "channels.import_catalog", {"state": state}
            )
        except KoudaiError as exc:
            refused(exc)
        return to_channel(name, "catalog-import")

    @bp.get("/channels/<name>/import/progress")
    @staff_required("channels.view")
    def channel_import_progress(name: str) -> ResponseReturnValue:
        info = channel_or_404(name)
        if info.kind != "taobao":
            abort(404)
        return jsonify(import_progress(info))
