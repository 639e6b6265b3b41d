"""Keyword auto-replies of the Official Account and Weibo monitoring in the back office.

Auto-replies and Weibo keyword rules are the shop's voice and watch list
(``marketing.manage``); Weibo alerts are read with ``customers.view`` and dealt with, or
their author linked to a customer, with ``customers.edit``. Ids travel in the form, so a
wrong one is a 404 after the permission check.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select

from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, NotFound, PermissionDenied
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.models import WeiboKeywordRule
from koudai_flask.services import wechat_oa, weibo_monitor
from koudai_flask.services.transaction import current_session

TRIGGER_LABELS = {
    "keyword": _l("Message keyword"),
    "click": _l("Menu click key"),
    "subscribe": _l("Welcome on subscribe"),
}
SEVERITY_LABELS = {"info": _l("Info"), "warning": _l("Warning"), "critical": _l("Critical")}


def _form_id(name: str) -> int:
    value = request.form.get(name, "")
    if not value.isdigit():
        abort(404)
    return int(value)


def register(bp: Blueprint) -> None:
    # -- WeChat keyword auto-replies --------------------------------------------------------

    @bp.route("/autoreplies", methods=["GET", "POST"])
    @staff_required("marketing.manage")
    def autoreplies() -> ResponseReturnValue:
        error, values = None, {"trigger": "keyword", "match": "exact", "keyword": "", "reply": ""}
        if request.method == "POST":
            checked_form()
            values = {key: request.form.get(key, "").strip() for key in values}
            try:
                wechat_oa.save_rule(
                    actor_id(),
                    trigger=values["trigger"],
                    keyword=values["keyword"],
                    reply=values["reply"],
                    match=values["match"] or "exact",
                    active=request.form.get("active", "1") == "1",
                )
            except PermissionDenied:
                abort(403)
            except KoudaiError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Auto-reply saved."), "success")
                return redirect(url_for(".autoreplies"), 303)
        return render_template(
            "koudai/admin/autoreplies.html",
            rules=wechat_oa.rules(),
            triggers=TRIGGER_LABELS,
            values=values,
            error=error,
            form=FlaskForm(),
        ), (422 if error else 200)

    @bp.post("/autoreplies/delete")
    @staff_required("marketing.manage")
    def autoreply_delete() -> ResponseReturnValue:
        checked_form()
        try:
            wechat_oa.delete_rule(actor_id(), _form_id("rule_id"))
        except NotFound:
            abort(404)
        flash(_k("Auto-reply deleted."), "success")
        return redirect(url_for(".autoreplies"), 303)

    # -- Weibo ------------------------------------------------------------------------------

    @bp.get("/weibo")
    @staff_required("customers.view")
    def weibo_alerts() -> ResponseReturnValue:
        status = request.args.get("status", "open")
        status = status if status in ("open", "resolved") else "open"
        rows = (
            current_session().execute(weibo_monitor.alert_query(acting(), status).limit(100)).all()
        )
        return render_template(
            "koudai/admin/weibo_alerts.html",
            rows=rows,
            status=status,
            severities=SEVERITY_LABELS,
            form=FlaskForm(),
        )

    @bp.post("/weibo/resolve")
    @staff_required("customers.edit")
    def weibo_alert_resolve() -> ResponseReturnValue:
        checked_form()
        try:
            weibo_monitor.resolve_alert(actor_id(), _form_id("alert_id"))
        except NotFound:
            abort(404)
        flash(_k("Alert marked as dealt with."), "success")
        return redirect(url_for(".weibo_alerts"), 303)

    @bp.post("/weibo/link")
    @staff_required("customers.edit")
    def weibo_link() -> ResponseReturnValue:
        checked_form()
        customer_id = request.form.get("customer_id", "").strip()
        uid = request.form.get("uid", "")
        if not customer_id.isdigit():
            flash(_k("Enter the customer's number."), "error")
            return redirect(url_for(".weibo_alerts"), 303)
        try:
            owner = weibo_monitor.link_user(actor_id(), uid, int(customer_id))
        except NotFound:
            abort(404)
        except PermissionDenied:
            abort(403)
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return redirect(url_for(".weibo_alerts"), 303)
        if owner != int(customer_id):
            flash(_k("This Weibo user already belongs to customer #%(id)s.", id=owner), "error")
        else:
            flash(_k("Weibo user linked to customer #%(id)s.", id=owner), "success")
        return redirect(url_for(".weibo_alerts"), 303)

    @bp.route("/weibo/rules", methods=["GET", "POST"])
    @staff_required("marketing.manage")
    def weibo_rules() -> ResponseReturnValue:
        error = None
        if request.method == "POST":
            checked_form()
            try:
                weibo_monitor.add_rule(
                    actor_id(),
                    request.form.get("keyword", ""),
                    request.form.get("severity", "warning"),
                )
            except PermissionDenied:
                abort(403)
            except KoudaiError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Keyword rule saved."), "success")
                return redirect(url_for(".weibo_rules"), 303)
        rules = (
            current_session()
            .scalars(
                select(WeiboKeywordRule).order_by(
                    WeiboKeywordRule.active.desc(), WeiboKeywordRule.keyword
                )
            )
            .all()
        )
        return render_template(
            "koudai/admin/weibo_rules.html",
            rules=rules,
            severities=SEVERITY_LABELS,
            error=error,
            form=FlaskForm(),
        ), (422 if error else 200)

    @bp.post("/weibo/rules/off")
    @staff_required("marketing.manage")
    def weibo_rule_off() -> ResponseReturnValue:
        checked_form()
        try:
            weibo_monitor.deactivate_rule(actor_id(), _form_id("rule_id"))
        except NotFound:
            abort(404)
        flash(_k("Keyword rule switched off."), "success")
        return redirect(url_for(".weibo_rules"), 303)
