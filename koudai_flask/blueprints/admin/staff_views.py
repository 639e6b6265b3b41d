"""Staff: members and their roles, granting, revoking and custom roles (``staff.manage``).

The delegation rules live in :mod:`koudai_flask.services.staff` (grant only downwards, only
permissions one holds, only within one's channels); a refusal changes nothing and comes
back as the page with the reason flashed and the error's status (403 for a refusal).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select

from koudai_flask import identity
from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import PERMISSION_LABELS, role_label
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Channel, StaffMember
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _render(status: int = 200) -> ResponseReturnValue:
    """The staff page; after a refused POST it keeps what was typed."""
    me = acting()
    session = current_session()
    members = session.scalars(
        select(StaffMember).order_by(StaffMember.active.desc(), StaffMember.user_id)
    ).all()
    my_rank, mine = staff.rank_of(me), staff.permissions_of(me)
    scope = staff.visible_channels(me)
    channels = [
        name
        for name in session.scalars(select(Channel.name).order_by(Channel.name))
        if scope is None or name in scope
    ]
    return render_template(
        "koudai/admin/staff.html",
        members=members,
        by_id={m.id: m.user_id for m in members},
        manageable={m.id for m in members if m.id != me.id and staff.rank_of(m) < my_rank},
        roles=staff.roles(),
        grantable=[name for name, rank, perms in staff.roles() if rank < my_rank and perms <= mine],
        permissions={name: PERMISSION_LABELS.get(name, name) for name in staff.PERMISSIONS},
        role_label=role_label,
        channels=channels,
        scoped=scope is not None,
        own_logins=identity.host_login_manager() is None,
        typed=request.form if request.method == "POST" else {},
        typed_permissions=request.form.getlist("permissions"),
        form=FlaskForm(),
    ), status


def _refused(exc: KoudaiError) -> ResponseReturnValue:
    flash(refusal_text(exc), "error")
    return _render(exc.http_status)


def _grant_target() -> tuple[str, dict[str, Any]] | str:
    """The user id to grant to and the login fields, or the message of what is missing."""
    form = request.form
    if identity.host_login_manager() is not None:
        user_id = form.get("user_id", "").strip()
        if not user_id or len(user_id) > 64:
            return _k("Enter the member's user id on this site.")
        return user_id, {}
    email = form.get("email", "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 200:
        return _k("Enter the member's email address.")
    user_id = f"staff:{email}"
    password = form.get("password") or None
    known = current_session().scalar(select(StaffMember.id).where(StaffMember.user_id == user_id))
    if password is None and known is None:
        return _k("A new member needs a password of at least 8 characters.")
    return user_id, {"email": email, "password": password}


def register(bp: Blueprint) -> None:
    @bp.get("/staff")
    @staff_required("staff.manage")
    def staff_list() -> ResponseReturnValue:
        return _render()

    @bp.post("/staff/grant")
    @staff_required("staff.manage")
    def staff_grant() -> ResponseReturnValue:
        checked_form()
        target = _grant_target()
        if isinstance(target, str):
            flash(target, "error")
            return _render(400)
        user_id, login = target
        channels = request.form.getlist("channels") or None
        try:
            staff.grant(
                user_id,
                request.form.get("role", ""),
                channels=channels,
                granted_by=actor_id(),
                display_name=request.form.get("display_name", "").strip()[:120],
                **login,
            )
        except KoudaiError as exc:
            return _refused(exc)
        flash(_k("Role granted."), "success")
        return redirect(url_for(".staff_list"), 303)

    @bp.post("/staff/revoke")
    @staff_required("staff.manage")
    def staff_revoke() -> ResponseReturnValue:
        checked_form()
        try:
            staff.revoke(request.form.get("user_id", ""), revoked_by=actor_id())
        except KoudaiError as exc:
            return _refused(exc)
        flash(_k("Access revoked."), "success")
        return redirect(url_for(".staff_list"), 303)

    @bp.post("/staff/roles")
    @staff_required("staff.manage")
    def role_create() -> ResponseReturnValue:
        checked_form()
        raw_rank = request.form.get("rank", "").strip()
        rank = int(raw_rank) if raw_rank.isascii() and raw_rank.isdigit() else -1
        try:
            staff.create_role(
                request.form.get("name", "").strip(),
                request.form.getlist("permissions"),
                rank=rank,
                created_by=actor_id(),
            )
        except KoudaiError as exc:
            return _refused(exc)
        flash(_k("Role created."), "success")
        return redirect(url_for(".staff_list"), 303)
