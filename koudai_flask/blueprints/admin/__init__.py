"""The back office: the ``koudai_admin`` blueprint, built by :func:`create_admin_blueprint`.

Every view needs a staff member holding the view's permission (``staff_required``), and
acts only within the member's channel scope. With a host Flask-Login, an anonymous visitor
is sent to the host's login view; without one, to our own staff login form.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, render_template
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from koudai_flask.blueprints.admin import (
    api_key_views,
    audit_views,
    auth_views,
    best_seller_views,
    campaign_views,
    catalog_views,
    channel_views,
    customer_views,
    funnel_views,
    inbox_views,
    job_views,
    marketing_views,
    message_views,
    onboarding_views,
    order_address_views,
    order_memo_views,
    order_views,
    packing_views,
    review_views,
    segment_views,
    shipping_views,
    social_views,
    staff_views,
    stock_csv_views,
    stock_views,
    tag_views,
    webhook_views,
)
from koudai_flask.blueprints.admin.common import PUBLIC_VIEWS, VIEW_PERMISSIONS, staff_required
from koudai_flask.blueprints.common import secret_key_gate
from koudai_flask.services import staff

# Modules with a ``register(bp)`` adding back-office pages, in menu order.
PAGE_MODULES = [
    auth_views,
    onboarding_views,
    order_views,
    order_address_views,
    order_memo_views,
    packing_views,
    best_seller_views,
    customer_views,
    review_views,
    tag_views,
    segment_views,
    inbox_views,
    catalog_views,
    shipping_views,
    stock_views,
    stock_csv_views,
    channel_views,
    marketing_views,
    message_views,
    social_views,
    campaign_views,
    funnel_views,
    staff_views,
    api_key_views,
    webhook_views,
    job_views,
    audit_views,
]


def create_admin_blueprint(name: str = "koudai_admin") -> Blueprint:
    bp = Blueprint(name, __name__)
    bp.before_request(secret_key_gate)
    for module in PAGE_MODULES:
        module.register(bp)

    @bp.context_processor
    def admin_context() -> dict[str, Any]:
        member = g.get("koudai_staff")
        return {
            "staff_member": member,
            "staff_can": (lambda codename: staff.can(member.user_id, codename))
            if member is not None
            else (lambda codename: False),
        }

    @bp.after_request
    def staff_pages_not_stored(response: Response) -> Response:
        # Customers' names, phones and orders: no cache keeps them, nor the browser's back
        # button after a sign-out on a shared computer.
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @bp.errorhandler(403)
    def forbidden(exc: HTTPException) -> ResponseReturnValue:
        return render_template("koudai/admin/error.html", code=403), 403

    @bp.errorhandler(404)
    def not_found(exc: HTTPException) -> ResponseReturnValue:
        return render_template("koudai/admin/error.html", code=404), 404

    return bp


__all__ = ["PUBLIC_VIEWS", "VIEW_PERMISSIONS", "create_admin_blueprint", "staff_required"]
