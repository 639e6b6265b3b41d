"""Helpers the shop's views share: the cart of this request, login checks, page numbers."""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import login_url

from koudai_flask import identity
from koudai_flask.blueprints.common import (
    current_path,
    page_number,  # noqa: F401  (re-exported)
)
from koudai_flask.errors import NotFound
from koudai_flask.services import cart, onboarding

GUEST_CART_KEY = "koudai_cart"
GUEST_ORDERS_KEY = "koudai_guest_orders"


def current_items() -> dict[str, int]:
    """The cart of this request: the buyer's stored cart, or the guest's in the session."""
    customer = identity.current_customer()
    if customer is not None:
        return cart.stored(customer.id)
    return dict(session.get(GUEST_CART_KEY, {}))


def save_guest_items(items: dict[str, int]) -> None:
    session[GUEST_CART_KEY] = items


def merge_guest_cart() -> None:
    """Before each shop request: a guest cart left over from before login joins the buyer's."""
    items = session.get(GUEST_CART_KEY)
    if not items:
        return
    customer = identity.current_customer()
    if customer is not None:
        cart.merge(customer.id, dict(items))
        session.pop(GUEST_CART_KEY, None)


def remember_guest_order(number: str) -> None:
    numbers = list(session.get(GUEST_ORDERS_KEY, []))[-19:]
    numbers.append(number)
    session[GUEST_ORDERS_KEY] = numbers


def guest_orders() -> list[str]:
    return list(session.get(GUEST_ORDERS_KEY, []))


def login_redirect(back: str | None = None) -> ResponseReturnValue:
    """Send a visitor to log in and come back (to ``back``, by default this page): the
    host's login when it has one. A button's POST names the page to come back to, which
    the host's login is given too: its own ``next`` would be the POST's address."""
    manager = identity.host_login_manager()
    if manager is not None:
        if back is None or not isinstance(manager.login_view, str):
            return manager.unauthorized()
        if manager.login_message:
            flash(manager.login_message, manager.login_message_category)
        return redirect(login_url(manager.login_view, next_url=back))
    return redirect(url_for(".login", next=back or current_path()))


def own_button(change: Callable[[int], object], done: str, back: str) -> ResponseReturnValue:
    """A signed-in buyer's button on one of their own things: the token checked, ``change``
    called with their customer id, then back to ``back`` saying ``done``. Another buyer's
    thing (``NotFound``) is 404 and unchanged."""
    from koudai_flask.blueprints.shop.forms import ActionForm

    customer = identity.current_customer()
    if customer is None:
        return login_redirect(back)
    if not ActionForm().validate():
        return expired_page(), 400
    try:
        change(customer.id)
    except NotFound:  # not theirs, or gone
        abort(404)
    flash(done, "success")
    return redirect(back, 303)


def expired_page() -> str:
    """The page a form whose CSRF token expired (or never came) answers with (400)."""
    from koudai_flask.i18n import gettext

    message = gettext("This page expired. Go back, reload it and try again.")
    return render_template("koudai/shop/error.html", message=message)


def safe_next(default: str) -> str:
    """A same-site path from ``?next=``, never an open redirect."""
    target = request.args.get("next") or ""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def per_page() -> int:
    return int(current_app.config["KOUDAI_PAGE_SIZE"])


def closed_shop_gate() -> ResponseReturnValue | None:
    """Buyers of a closed shop get "coming soon" (503); staff go on, to preview it. Product
    images stay reachable (the host's pages may show them)."""
    if (request.endpoint or "").rsplit(".", 1)[-1] == "media":
        return None
    if onboarding.shop_is_open() or identity.current_staff() is not None:
        return None
    return render_template("koudai/shop/coming_soon.html"), 503, {"Retry-After": "3600"}
