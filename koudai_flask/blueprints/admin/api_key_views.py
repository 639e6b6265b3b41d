"""API keys of the open platform (``staff.manage``): create, show once, revoke.

A new key is shown on the page that answers the form, once, and never stored in the
session (Flask's session cookie is signed, not encrypted); the page is sent ``no-store``.
"""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select

from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import PERMISSION_LABELS, role_label
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Channel, StaffMember
from koudai_flask.services import api_keys, staff
from koudai_flask.services.transaction import current_session


def _render(status: int = 200, token: str | None = None) -> ResponseReturnValue:
    me = acting()
    session = current_session()
    my_rank = staff.rank_of(me)
    owners = [me] + [
        m
        for m in session.scalars(
            select(StaffMember).where(StaffMember.active.is_(True)).order_by(StaffMember.user_id)
        )
        if m.id != me.id and staff.rank_of(m) < my_rank
    ]
    scope = staff.visible_channels(me)
    channels = [
        name
        for name in session.scalars(select(Channel.name).order_by(Channel.name))
        if scope is None or name in scope
    ]
    response = make_response(
        render_template(
            "koudai/admin/api_keys.html",
            keys=api_keys.visible_keys(me.user_id),
            owners=owners,
            role_label=role_label,
            permissions={name: PERMISSION_LABELS.get(name, name) for name in staff.PERMISSIONS},
            channels=channels,
            token=token,
            typed=request.form if request.method == "POST" and token is None else {},
            typed_scopes=request.form.getlist("scopes") if token is None else [],
            form=FlaskForm(),
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def register(bp: Blueprint) -> None:
    @bp.get("/api-keys")
    @staff_required("staff.manage")
    def api_keys_list() -> ResponseReturnValue:
        return _render()

    @bp.post("/api-keys")
    @staff_required("staff.manage")
    def api_key_create() -> ResponseReturnValue:
        checked_form()
        try:
            created = api_keys.create(
                request.form.get("owner", "") or actor_id(),
                request.form.get("name", ""),
                request.form.getlist("scopes"),
                channels=request.form.getlist("channels") or None,
                created_by=actor_id(),
            )
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return _render(exc.http_status)
        flash(_k("API key created. Copy it now: it is shown only this once."), "success")
        return _render(201, token=created.token)

    @bp.post("/api-keys/<prefix>/revoke")
    @staff_required("staff.manage")
    def api_key_revoke(prefix: str) -> ResponseReturnValue:
        checked_form()
        try:
            api_keys.revoke(prefix, revoked_by=actor_id())
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return _render(exc.http_status)
        flash(_k("API key revoked."), "success")
        return redirect(url_for(".api_keys_list"), 303)
