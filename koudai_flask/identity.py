"""Who is asking: the host's Flask-Login user when there is one, else our own session login."""

from __future__ import annotations

from typing import Any

from flask import current_app, session

from koudai_flask.models import StaffMember
from koudai_flask.services import staff

STAFF_SESSION_KEY = "koudai_staff_user_id"


def host_login_manager() -> Any | None:
    """The host's ``LoginManager``; koudai never installs a second one."""
    return getattr(current_app, "login_manager", None)


def current_user_id() -> str | None:
    """The signed-in user's id as the host's Flask-Login knows it, else None."""
    if host_login_manager() is None:
        return None
    from flask_login import current_user

    if current_user and current_user.is_authenticated:
        return str(current_user.get_id())
    return None


def current_staff() -> StaffMember | None:
    user_id = (
        current_user_id() if host_login_manager() is not None else session.get(STAFF_SESSION_KEY)
    )
    if user_id is None:
        return None
    member = staff._member(str(user_id))
    return member if member is not None and member.active else None


def login_staff(member: StaffMember) -> None:
    session[STAFF_SESSION_KEY] = member.user_id


def logout_staff() -> None:
    session.pop(STAFF_SESSION_KEY, None)
