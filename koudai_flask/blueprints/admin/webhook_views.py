"""Outbound webhooks (``staff.manage``): subscriptions, their delivery log, send again, ping.

A subscription's signing secret is shown once, in the answer to the form that made it
(creating, or rotating the secret); it is stored encrypted and never shown again. Ids in
URLs are read after the permission check, so a member without ``staff.manage`` gets 403
for any URL here, existing or not.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.services import webhooks

EVENT_LABELS = {
    "order.created": _l("Order created"),
    "order.paid": _l("Order paid"),
    "order.slip_printed": _l("Packing slip printed"),
    "order.address_changed": _l("Order address changed"),
    "order.partially_shipped": _l("A parcel of an order shipped"),
    "order.shipped": _l("Order shipped"),
    "order.delivered": _l("Order delivered"),
    "order.completed": _l("Order completed"),
    "order.cancelled": _l("Order cancelled"),
    "order.partially_refunded": _l("Order partly refunded"),
    "order.refunded": _l("Order refunded"),
    "order.refund_requested": _l("Refund requested"),
    "order.refund_declined": _l("Refund declined"),
    "order.refund_settled": _l("Refund request settled"),
    "order.refund_withdrawn": _l("Refund request withdrawn"),
    "order.return_agreed": _l("Return agreed"),
    "order.return_sent": _l("Goods sent back"),
    "order.return_arrived": _l("Returned goods arrived"),
    "stock.changed": _l("Stock changed"),
    "product.created": _l("Product created"),
    "product.updated": _l("Product changed"),
    "product.archived": _l("Product archived"),
    "shipping_template.created": _l("Shipping template created"),
    "shipping_template.updated": _l("Shipping template changed"),
    "shipping_template.deleted": _l("Shipping template deleted"),
    "customer.created": _l("Customer created"),
    "customer.tagged": _l("Customer tagged"),
    "customer.merged": _l("Customers merged"),
    "customer.split": _l("Customer merge undone"),
    "ping": _l("Test ping"),
}
STATUS_LABELS = {
    "pending": _l("Waiting"),
    "sending": _l("Sending"),
    "delivered": _l("Delivered"),
    "failed": _l("Failed"),
}
LOG_STATUSES = ("pending", "sending", "delivered", "failed")


def _id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        abort(404)
    return int(raw)


def _render(
    status: int = 200, *, secret: str | None = None, error: str | None = None
) -> ResponseReturnValue:
    typed = request.form if request.method == "POST" and error else {}
    return render_template(
        "koudai/admin/webhooks.html",
        subscriptions=webhooks.list_subscriptions(),
        counts=webhooks.delivery_counts(),
        events=webhooks.EVENTS,
        event_labels=EVENT_LABELS,
        enabled=current_app.config["KOUDAI_WEBHOOKS"],
        secret=secret,
        error=error,
        typed=typed,
        typed_events=request.form.getlist("events") if typed else [],
        form=FlaskForm(),
    ), status


def _done(message: str, subscription_id: int | None = None) -> ResponseReturnValue:
    flash(message, "success")
    anchor = f"#webhook-{subscription_id}" if subscription_id is not None else ""
    return redirect(url_for(".webhooks_list") + anchor, 303)


def register(bp: Blueprint) -> None:
    @bp.get("/webhooks")
    @staff_required("staff.manage")
    def webhooks_list() -> ResponseReturnValue:
        return _render()

    @bp.post("/webhooks")
    @staff_required("staff.manage")
    def webhook_create() -> ResponseReturnValue:
        checked_form()
        form = request.form
        try:
            created = webhooks.create_subscription(
                form.get("url", "").strip(),
                form.getlist("events"),
                owner_user_id=actor_id(),
                description=form.get("description", ""),
                actor=actor_id(),
            )
        except KoudaiError as exc:
            return _render(exc.http_status, error=refusal_text(exc))
        flash(_k("Webhook created. Copy its secret now: it is not shown again."), "success")
        return _render(201, secret=created.secret)

    @bp.post("/webhooks/<subscription_id>/edit")
    @staff_required("staff.manage")
    def webhook_edit(subscription_id: str) -> ResponseReturnValue:
        checked_form()
        sub_id = _id(subscription_id)
        form = request.form
        try:
            webhooks.update_subscription(
                sub_id,
                url=form.get("url", "").strip(),
                events=form.getlist("events"),
                description=form.get("description", ""),
                actor=actor_id(),
            )
        except KoudaiError as exc:
            return _render(exc.http_status, error=refusal_text(exc))
        return _done(_k("Webhook saved."), sub_id)

    @bp.post("/webhooks/<subscription_id>/active")
    @staff_required("staff.manage")
    def webhook_active(subscription_id: str) -> ResponseReturnValue:
        checked_form()
        sub_id = _id(subscription_id)
        active = request.form.get("active") == "1"
        try:
            webhooks.set_active(sub_id, active, actor=actor_id())
        except KoudaiError as exc:
            return _render(exc.http_status, error=refusal_text(exc))
        return _done(_k("Webhook enabled.") if active else _k("Webhook disabled."), sub_id)

    @bp.post("/webhooks/<subscription_id>/secret")
    @staff_required("staff.manage")
    def webhook_rotate(subscription_id: str) -> ResponseReturnValue:
        checked_form()
        try:
            secret = webhooks.rotate_secret(_id(subscription_id), actor=actor_id())
        except KoudaiError as exc:
            return _render(exc.http_status, error=refusal_text(exc))
        flash(_k("New secret in force. Copy it now: it is not shown again."), "success")
        return _render(secret=secret)

    @bp.post("/webhooks/<subscription_id>/ping")
    @staff_required("staff.manage")
    def webhook_ping(subscription_id: str) -> ResponseReturnValue:
        checked_form()
        sub_id = _id(subscription_id)
        try:
            webhooks.ping(sub_id, actor=actor_id())
        except KoudaiError as exc:
            return _render(exc.http_status, error=refusal_text(exc))
        flash(_k("Test ping sent."), "success")
        return redirect(url_for(".webhook_deliveries", subscription=sub_id), 303)

    @bp.post("/webhooks/<subscription_id>/delete")
    @staff_required("staff.manage")
    def webhook_delete(subscription_id: str) -> ResponseReturnValue:
        checked_form()
        try:
            webhooks.delete_subscription(_id(subscription_id), actor=actor_id())
        except KoudaiError as exc:
            return _render(exc.http_status, error=refusal_text(exc))
        return _done(_k("Webhook deleted."))

    @bp.get("/webhooks/deliveries")
    @staff_required("staff.manage")
    def webhook_deliveries() -> ResponseReturnValue:
        raw_sub = request.args.get("subscription", "")
        sub_id = _id(raw_sub) if raw_sub else None
        try:
            subscription = webhooks.get_subscription(sub_id) if sub_id is not None else None
        except NotFound:
            abort(404)
        status = request.args.get("status") or None
        if status is not None and status not in LOG_STATUSES:
            abort(404)
        raw_before = request.args.get("before", "")
        before = _id(raw_before) if raw_before else None
        rows = webhooks.deliveries(sub_id, status=status, limit=50, before_id=before)
        return render_template(
            "koudai/admin/webhook_deliveries.html",
            subscription=subscription,
            urls={s.id: s.url for s in webhooks.list_subscriptions()},
            deliveries=rows,
            status=status,
            statuses=LOG_STATUSES,
            status_labels=STATUS_LABELS,
            event_labels=EVENT_LABELS,
            older=rows[-1].id if len(rows) == 50 else None,
            form=FlaskForm(),
        )

    @bp.post("/webhooks/deliveries/<delivery_id>/redeliver")
    @staff_required("staff.manage")
    def webhook_redeliver(delivery_id: str) -> ResponseReturnValue:
        checked_form()
        try:
            delivery = webhooks.redeliver(_id(delivery_id), actor=actor_id())
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return redirect(url_for(".webhook_deliveries"), 303)
        flash(_k("Sent again."), "success")
        return redirect(url_for(".webhook_deliveries", subscription=delivery.subscription_id), 303)
