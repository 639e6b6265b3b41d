"""What every back-office view shares: the staff check with its permission registry."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, g, redirect, url_for
from flask.typing import ResponseReturnValue

from koudai_flask import identity
from koudai_flask.blueprints.common import current_path
from koudai_flask.models import StaffMember
from koudai_flask.services import staff

#: view function qualified name -> the permission it needs ("" = any staff member).
#: The permission-matrix test reads this, so a view without a check cannot go unnoticed.
VIEW_PERMISSIONS: dict[str, str] = {}
#: Views open to everyone (the login form).
PUBLIC_VIEWS: set[str] = set()


def staff_required(permission: str | None = None) -> Callable[..., Any]:
    """Only staff (with ``permission``, when given); others get a login redirect or 403."""

    def decorate(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
        VIEW_PERMISSIONS[view.__name__] = permission or ""

        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            member = identity.current_staff()
            if member is None:
                manager = identity.host_login_manager()
                if manager is not None:
                    if identity.current_user_id() is None:
                        return manager.unauthorized()
                    abort(403)
                return redirect(url_for(".login", next=current_path()))
            if permission is not None and not staff.can(member.user_id, permission):
                abort(403)
            g.koudai_staff = member
            return view(*args, **kwargs)

        return wrapped

    return decorate


def public(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    PUBLIC_VIEWS.add(view.__name__)
    return view


def checked_form() -> None:
    """A POST without a valid CSRF token is refused with 400 before anything changes."""
    from flask_wtf import FlaskForm

    if not FlaskForm().validate():
        abort(400)


def acting() -> StaffMember:
    member: StaffMember = g.koudai_staff
    return member


def actor_id() -> str:
    return acting().user_id


MAX_UPLOAD = 5 * 1024 * 1024


def uploaded_text(field: str = "file") -> str | None:
    """The text of the CSV file uploaded as ``field`` (None when no file was chosen): UTF-8,
    or GB18030 as a spreadsheet saved on a Chinese Windows writes it; over 5 MiB is a 413."""
    from flask import request

    upload = request.files.get(field)
    if upload is None or not upload.filename:
        return None
    raw = upload.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        abort(413)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")
