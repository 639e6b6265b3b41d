"""Helpers the shop's views share: the cart of this request, login checks, page numbers."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from koudai_flask import identity
from koudai_flask.blueprints.common import (
    current_path,
    page_number,  # noqa: F401  (re-exported)
)
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


def login_redirect() -> ResponseReturnValue:
    """Send a visitor to log in and come back: the host's login when it has one."""
    manager = identity.host_login_manager()
    if manager is not None:
        return manager.unauthorized()
    return redirect(url_for(".login", next=current_path()))


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
