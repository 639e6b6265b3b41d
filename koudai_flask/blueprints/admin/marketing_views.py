"""Marketing in the back office (``marketing.manage``): coupons, coupon batches, full
reductions (满减) and limited-time prices — list, create, edit, deactivate, and a batch's
codes as CSV. Forms post with a CSRF token; the services check the permission again,
validate and audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask.blueprints.admin import marketing_forms as forms
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import NotFound, PermissionDenied, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Coupon, Sku
from koudai_flask.services import marketing
from koudai_flask.services.marketing import coupon_admin, pricing, promotions
from koudai_flask.services.marketing.promotions import MAX_TIERS
from koudai_flask.services.transaction import current_session

PERMISSION = "marketing.manage"


def _guarded(work: Callable[[], Any]) -> Any:
    """Run a service call; its permission and lookup errors become 403 and 404."""
    try:
        return work()
    except PermissionDenied:
        abort(403)
    except NotFound:
        abort(404)


def _toggled(work: Callable[[bool], Any]) -> ResponseReturnValue:
    """The activate/deactivate buttons: ``active=1`` or ``active=0``, then the list."""
    checked_form()
    active = request.form.get("active") == "1"
    _guarded(lambda: work(active))
    flash(_k("Activated.") if active else _k("Deactivated."), "success")
    return redirect(url_for(".marketing_index"), 303)


def _form_page(template: str, error: str | None, **context: Any) -> ResponseReturnValue:
    return render_template(f"koudai/admin/{template}", error=error, form=FlaskForm(), **context), (
        422 if error else 200
    )


def register(bp: Blueprint) -> None:
    bp.add_app_template_global(marketing.discounts_of, "koudai_order_discounts")

    @bp.get("/marketing")
    @staff_required(PERMISSION)
    def marketing_index() -> ResponseReturnValue:
        batches = coupon_admin.batches()
        return render_template(
            "koudai/admin/marketing.html",
            coupons=coupon_admin.single_coupons(),
            batches=[(b, coupon_admin.batch_usage(b.id)) for b in batches],
            promotions=promotions.promotions(),
            prices=pricing.limited_prices(),
            form=FlaskForm(),
            local_text=forms.local_text,
        )

    # -- single codes --------------------------------------------------------------------------

    def coupon_form(coupon: Coupon | None) -> ResponseReturnValue:
        values = forms.coupon_values(coupon)
        error = None
        if request.method == "POST":
            checked_form()
            values = {field: request.form.get(field, "").strip() for field in forms.COUPON_FIELDS}
            try:
                rules = forms.coupon_rules(request.form)
                if coupon is None:
                    saved = _guarded(
                        lambda: coupon_admin.create_coupon(actor_id(), values["code"], rules)
                    )
                else:
                    saved = _guarded(
                        lambda: coupon_admin.update_coupon(actor_id(), coupon.id, rules)
                    )
            except ValidationError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Coupon %(code)s saved.", code=saved.code), "success")
                return redirect(url_for(".marketing_index"), 303)
        return _form_page("marketing_coupon.html", error, coupon=coupon, batch=None, values=values)

    @bp.route("/marketing/coupons/new", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def coupon_new() -> ResponseReturnValue:
        return coupon_form(None)

    @bp.route("/marketing/coupons/<int:coupon_id>", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def coupon_edit(coupon_id: int) -> ResponseReturnValue:
        coupon = _guarded(lambda: coupon_admin.get_coupon(coupon_id))
        if coupon.batch_id is not None:
            return redirect(url_for(".batch_edit", batch_id=coupon.batch_id))
        return coupon_form(coupon)

    @bp.post("/marketing/coupons/<int:coupon_id>/active")
    @staff_required(PERMISSION)
    def coupon_active(coupon_id: int) -> ResponseReturnValue:
        return _toggled(lambda on: coupon_admin.set_coupon_active(actor_id(), coupon_id, on))

    # -- batches -------------------------------------------------------------------------------

    @bp.route("/marketing/batches/new", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def batch_new() -> ResponseReturnValue:
        values = forms.coupon_values(None)
        error = None
        if request.method == "POST":
            checked_form()
            values = {field: request.form.get(field, "").strip() for field in forms.COUPON_FIELDS}
            try:
                rules = forms.coupon_rules(request.form)
                size = forms.batch_size(request.form)
                batch = _guarded(
                    lambda: coupon_admin.create_batch(
                        actor_id(), values["name"], size, rules, prefix=values["prefix"]
                    )
                )
            except ValidationError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("%(n)d codes made.", n=batch.size), "success")
                return redirect(url_for(".batch_edit", batch_id=batch.id), 303)
        return _form_page("marketing_coupon.html", error, coupon=None, batch="new", values=values)

    @bp.route("/marketing/batches/<int:batch_id>", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def batch_edit(batch_id: int) -> ResponseReturnValue:
        batch = _guarded(lambda: coupon_admin.get_batch(batch_id))
        first = batch.coupons[0] if batch.coupons else None
        values = forms.coupon_values(first)
        error = None
        if request.method == "POST":
            checked_form()
            values = {field: request.form.get(field, "").strip() for field in forms.COUPON_FIELDS}
            try:
                rules = forms.coupon_rules(request.form)
                _guarded(lambda: coupon_admin.update_batch(actor_id(), batch_id, rules))
            except ValidationError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Every code of the batch has the new rules."), "success")
                return redirect(url_for(".batch_edit", batch_id=batch_id), 303)
        return _form_page(
            "marketing_coupon.html",
            error,
            coupon=None,
            batch=batch,
            usage=coupon_admin.batch_usage(batch_id),
            values=values,
        )

    @bp.get("/marketing/batches/<int:batch_id>/codes.csv")
    @staff_required(PERMISSION)
    def batch_codes(batch_id: int) -> ResponseReturnValue:
        text = _guarded(lambda: coupon_admin.batch_csv(actor_id(), batch_id))
        return Response(
            text,
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename=coupons-{batch_id}.csv"},
        )

    @bp.post("/marketing/batches/<int:batch_id>/active")
    @staff_required(PERMISSION)
    def batch_active(batch_id: int) -> ResponseReturnValue:
        return _toggled(lambda on: coupon_admin.set_batch_active(actor_id(), batch_id, on))

    # -- full reductions -----------------------------------------------------------------------

    def promotion_form(promotion_id: int | None) -> ResponseReturnValue:
        promotion = (
            None
            if promotion_id is None
            else _guarded(lambda: promotions.get_promotion(promotion_id))
        )
        values = forms.promotion_values(promotion)
        error = None
        if request.method == "POST":
            checked_form()
            values = forms.posted_promotion_values(request.form)
            try:
                given = forms.promotion_input(request.form)
                _guarded(lambda: promotions.save_promotion(actor_id(), promotion_id, **given))
            except ValidationError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Promotion saved."), "success")
                return redirect(url_for(".marketing_index"), 303)
        return _form_page(
            "marketing_promotion.html",
            error,
            promotion=promotion,
            values=values,
            max_tiers=MAX_TIERS,
        )

    @bp.route("/marketing/promotions/new", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def promotion_new() -> ResponseReturnValue:
        return promotion_form(None)

    @bp.route("/marketing/promotions/<int:promotion_id>", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def promotion_edit(promotion_id: int) -> ResponseReturnValue:
        return promotion_form(promotion_id)

    @bp.post("/marketing/promotions/<int:promotion_id>/active")
    @staff_required(PERMISSION)
    def promotion_active(promotion_id: int) -> ResponseReturnValue:
        return _toggled(lambda on: promotions.set_promotion_active(actor_id(), promotion_id, on))

    # -- limited-time prices -------------------------------------------------------------------

    def price_form(price_id: int | None) -> ResponseReturnValue:
        row = None if price_id is None else _guarded(lambda: pricing.get_limited_price(price_id))
        sku = current_session().get(Sku, row.sku_id) if row is not None else None
        values = forms.price_values(row, sku)
        error = None
        if request.method == "POST":
            checked_form()
            values = {
                key: request.form.get(key, "").strip()
                for key in ("sku", "name", "price", "starts_at", "ends_at")
            }
            try:
                given = forms.price_input(request.form)
                pricing.save_limited_price(actor_id(), price_id, **given)
            except PermissionDenied:
                abort(403)
            except NotFound:
                error = _k("There is no SKU with the code %(code)s.", code=values["sku"])
            except ValidationError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Limited-time price saved."), "success")
                return redirect(url_for(".marketing_index"), 303)
        return _form_page("marketing_price.html", error, row=row, values=values)

    @bp.route("/marketing/prices/new", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def limited_price_new() -> ResponseReturnValue:
        return price_form(None)

    @bp.route("/marketing/prices/<int:price_id>", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def limited_price_edit(price_id: int) -> ResponseReturnValue:
        return price_form(price_id)

    @bp.post("/marketing/prices/<int:price_id>/active")
    @staff_required(PERMISSION)
    def limited_price_active(price_id: int) -> ResponseReturnValue:
        return _toggled(lambda on: pricing.set_limited_price_active(actor_id(), price_id, on))
