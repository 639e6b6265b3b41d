"""The mobile shop: the ``koudai_shop`` blueprint, built by :func:`create_shop_blueprint`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from koudai_flask import identity
from koudai_flask.blueprints.common import secret_key_gate
from koudai_flask.blueprints.shop import (
    account_views,
    address_views,
    alert_views,
    cart_views,
    catalog_views,
    favourite_views,
    order_address_views,
    order_views,
    review_views,
    tracking_views,
)
from koudai_flask.blueprints.shop.catalog_views import media_folder
from koudai_flask.blueprints.shop.chrome import cached_url_for, shop_links, shop_text
from koudai_flask.blueprints.shop.common import closed_shop_gate, current_items, merge_guest_cart
from koudai_flask.i18n import bound_catalog
from koudai_flask.services import theme

# Pages of one buyer (their cart, orders, payments) or with a form bound to their session:
# kept by no cache, the browser's back button after a sign-out on a shared phone included.
PRIVATE_VIEWS = frozenset(
    {
        "cart_page",
        "checkout_page",
        "checkout_totals",
        "my_orders",
        "order_detail",
        "pay",
        "payment_result",
        "login",
        "register_account",
        "reset_request",
        "reset_password",
        "addresses_page",
        "address_add",
        "address_edit",
        "alerts_page",
        "favourites_page",
        "order_address_edit",
    }
)


def create_shop_blueprint(name: str = "koudai_shop") -> Blueprint:
    bp = Blueprint(name, __name__)
    catalog_views.register(bp)
    cart_views.register(bp)
    order_views.register(bp)
    account_views.register(bp)
    address_views.register(bp)
    alert_views.register(bp)
    favourite_views.register(bp)
    review_views.register(bp)
    order_address_views.register(bp)
    tracking_views.register(bp)  # campaign links /r/<token> and the funnel's steps

    bp.before_request(secret_key_gate)  # first: without the key no form or session works
    bp.before_request(closed_shop_gate)  # then: a closed shop starts no login either
    bp.before_request(account_views.wechat_silent_login)
    bp.before_request(merge_guest_cart)

    @bp.after_request
    def private_pages_not_stored(response: Response) -> Response:
        if (request.endpoint or "").rpartition(".")[2] in PRIVATE_VIEWS:
            response.headers.setdefault("Cache-Control", "private, no-store")
        return response

    @bp.context_processor
    def shop_context() -> dict[str, Any]:
        catalog = bound_catalog()
        return {
            "cart_count": sum(current_items().values()),
            "buyer": identity.current_customer(),  # found by current_items, kept for the request
            "own_accounts": identity.host_login_manager() is None,
            "theme": theme.current(),
            "_k": catalog.gettext,
            "_kn": catalog.ngettext,
            "url_for": cached_url_for,
            "shop_links": shop_links(),
            "shop_text": shop_text(catalog.catalog, catalog.gettext),
        }

    # Unknown paths under the shop's prefix still get the shop's own 404 page.
    @bp.get("/<path:unknown>")
    def not_found(unknown: str) -> ResponseReturnValue:
        abort(404)

    @bp.errorhandler(404)
    def page_not_found(exc: HTTPException) -> ResponseReturnValue:
        return render_template("koudai/shop/404.html"), 404

    @bp.errorhandler(500)
    def server_error(exc: Exception) -> ResponseReturnValue:
        return render_template("koudai/shop/error.html"), 500

    return bp


__all__ = ["PRIVATE_VIEWS", "create_shop_blueprint", "media_folder"]
