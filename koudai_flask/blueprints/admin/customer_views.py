"""Customers as staff see them, within their channel scope: the list and the CRM page.

The page shows one customer across channels (identities, orders from every channel,
figures, RFM, tags and a timeline of notes, tag changes and merges) and the staff actions
on it, each needing ``customers.edit``: tags, notes, merges and splits (all audited).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.blueprints.common import page_number
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, NotFound, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.services import backoffice, crm_profile, merges, segments, tags
from koudai_flask.services.identities import resolve
from koudai_flask.services.transaction import current_session

PER_PAGE = 30

IDENTITY_LABELS = {
    "web": _l("Site account"),
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "wechat_openid": _l("WeChat openid"),
    "wechat_unionid": _l("WeChat unionid"),
    "weibo_uid": _l("Weibo uid"),
    "taobao_nick": _l("Taobao buyer"),
    "taobao_open_uid": _l("Taobao open uid"),
}


def identity_label(kind: str) -> str:
    label = IDENTITY_LABELS.get(kind)
    return str(label) if label is not None else kind


def _list_filters() -> tuple[str | None, str | None, int | None]:
    q = request.args.get("q", "").strip()[:100] or None
    tag = request.args.get("tag", "").strip()[:40] or None
    segment = request.args.get("segment", "")
    return q, tag, int(segment) if segment.isdigit() else None


def _customer_page(customer_id: int, status: int = 200) -> ResponseReturnValue:
    try:
        profile = crm_profile.profile(actor_id(), customer_id)
    except NotFound:
        abort(404)
    return render_template(
        "koudai/admin/customer.html",
        profile=profile,
        customer=profile.customer,
        orders=profile.orders,
        identity_label=identity_label,
        known_tags=[t.name for t, _ in tags.all_tags() if t.rule is None],
    ), status


def _act(customer_id: int, action: Callable[[], Any], done: str) -> ResponseReturnValue:
    """Run a staff action; a refusal shows the page again with the reason and its status."""
    try:
        action()
    except KoudaiError as exc:
        if exc.http_status == 403:
            abort(403)
        if exc.http_status == 404:
            abort(404)
        flash(refusal_text(exc), "error")
        return _customer_page(customer_id, exc.http_status)
    flash(done, "success")
    return redirect(url_for(".customer_detail", customer_id=customer_id)), 303


def register(bp: Blueprint) -> None:
    @bp.get("/customers")
    @staff_required("customers.view")
    def customers_list() -> ResponseReturnValue:
        q, tag, segment_id = _list_filters()
        page = page_number()
        rules = []
        if tag:
            rules.append(f"tag == {segments.quote(tag)}")
        if segment_id is not None:
            try:
                rules.append(f"({segments.get(segment_id).rule})")
            except NotFound:
                abort(404)
        query = backoffice.customer_query(acting(), q, rule=" and ".join(rules) or None)
        session = current_session()
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
        return render_template(
            "koudai/admin/customers.html",
            customers=rows,
            total=total,
            page=page,
            pages=max(1, -(-(total or 0) // PER_PAGE)),
            q=q,
            tag=tag,
            segment_id=segment_id,
            all_tags=[t.name for t, _ in tags.all_tags()],
            all_segments=segments.all_segments(),
        )

    @bp.get("/customers/<int:customer_id>")
    @staff_required("customers.view")
    def customer_detail(customer_id: int) -> ResponseReturnValue:
        standing = resolve(customer_id)
        if standing != customer_id:  # merged into another: show the one that stands
            return redirect(url_for(".customer_detail", customer_id=standing))
        return _customer_page(customer_id)

    @bp.post("/customers/<int:customer_id>/tags")
    @staff_required("customers.edit")
    def customer_tag(customer_id: int) -> ResponseReturnValue:
        checked_form()
        name = request.form.get("tag", "")
        add = request.form.get("action", "add") != "remove"
        return _act(
            customer_id,
            lambda: crm_profile.tag_customer(actor_id(), customer_id, name, add=add),
            _k("Tag added.") if add else _k("Tag removed."),
        )

    @bp.post("/customers/<int:customer_id>/notes")
    @staff_required("customers.edit")
    def customer_note(customer_id: int) -> ResponseReturnValue:
        checked_form()
        body = request.form.get("body", "")
        return _act(
            customer_id,
            lambda: crm_profile.add_note(actor_id(), customer_id, body),
            _k("Note added."),
        )

    @bp.post("/customers/<int:customer_id>/merge")
    @staff_required("customers.edit")
    def customer_merge(customer_id: int) -> ResponseReturnValue:
        checked_form()
        source = request.form.get("source_id", "").strip().lstrip("#")
        if not source.isdigit():
            flash(_k("Enter the number of the customer to merge into this one."), "error")
            return _customer_page(customer_id, 422)

        def merge() -> None:
            try:
                merges.merge(actor_id(), int(source), customer_id)
            except NotFound:  # a mistyped number: this page stands, the other one does not
                raise ValidationError(
                    f"unknown customer {source}", reason="unknown_customer", detail={"id": source}
                ) from None

        return _act(customer_id, merge, _k("Customers merged."))

    @bp.post("/customers/<int:customer_id>/merges/<int:merge_id>/split")
    @staff_required("customers.edit")
    def customer_split(customer_id: int, merge_id: int) -> ResponseReturnValue:
        checked_form()
        if merge_id not in {m.id for m in merges.merges_of(customer_id)}:
            abort(404)
        return _act(
            customer_id,
            lambda: merges.split(actor_id(), merge_id),
            _k("Merge undone: the customers stand apart again."),
        )

    @bp.post("/customers/<int:customer_id>/identities/<int:identity_id>/split")
    @staff_required("customers.edit")
    def customer_split_identity(customer_id: int, identity_id: int) -> ResponseReturnValue:
        checked_form()
        return _act(
            customer_id,
            lambda: merges.detach_identity(actor_id(), customer_id, identity_id),
            _k("The identity is now a customer of its own."),
        )
