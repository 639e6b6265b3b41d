"""Who is asking: the host's Flask-Login user when there is one, else our own session login.

Staff and buyers alike: with a host ``LoginManager``, its ``current_user`` is the person and
the library links it to a ``StaffMember`` / ``Customer`` by user id. Without one, our own
logins keep the id in the session. Inside WeChat the openid from the silent OAuth login
identifies a buyer too.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flask import current_app, g, has_request_context, request, session

from koudai_flask.models import Customer, StaffMember
from koudai_flask.services import customers, staff

STAFF_SESSION_KEY = "koudai_staff_user_id"
BUYER_SESSION_KEY = "koudai_customer_id"
OPENID_SESSION_KEY = "koudai_wechat_openid"


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


# -- staff -----------------------------------------------------------------------------------


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


# -- buyers ----------------------------------------------------------------------------------


def _memo() -> dict[str, Any]:
    """What this request already looked up. Kept on the request, not on ``g``: a test (or a
    host) that holds one app context across several requests shares ``g`` between them, and
    one buyer's identity must never answer for the next request's."""
    if has_request_context():
        memo: dict[str, Any] = request.environ.setdefault("koudai.memo", {})
        return memo
    return g.setdefault("koudai_memo", {})


def current_customer() -> Customer | None:
    """The buyer of this request, or None for a guest. Cached for the request."""
    memo = _memo()
    if "customer" in memo:
        return memo["customer"]
    customer: Customer | None = None
    openid = session.get(OPENID_SESSION_KEY)
    if host_login_manager() is not None:
        user_id = current_user_id()
        if user_id is not None:
            customer = customers.for_user(user_id)
            if openid:
                _link_quietly(customer.id, openid)
    else:
        customer_id = session.get(BUYER_SESSION_KEY)
        if customer_id is not None:
            from koudai_flask.services.identities import resolve

            # Staff may have merged this buyer into another customer since the login.
            standing = resolve(customer_id)
            if standing != customer_id:
                session[BUYER_SESSION_KEY] = standing
            customer = current_app.extensions["koudai"].session.get(Customer, standing)
    if customer is None and openid:
        customer = customers.by_identity("wechat_openid", openid)
    memo["customer"] = customer
    return customer


def _link_quietly(customer_id: int, openid: str) -> None:
    from koudai_flask.errors import ValidationError

    # An openid that is another customer's stays there: merging is staff's call (CRM).
    with contextlib.suppress(ValidationError):
        customers.link_identity(customer_id, "wechat_openid", openid)


def login_buyer(customer: Customer) -> None:
    session[BUYER_SESSION_KEY] = customer.id
    _memo().pop("customer", None)


def logout_buyer() -> None:
    session.pop(BUYER_SESSION_KEY, None)
    session.pop(OPENID_SESSION_KEY, None)
    _memo().pop("customer", None)


def remember_openid(openid: str) -> None:
    session[OPENID_SESSION_KEY] = openid
    _memo().pop("customer", None)
