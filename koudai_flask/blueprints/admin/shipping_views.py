"""Shipping templates (运费模板) in the back office (``catalog.edit``): the list, a form to
create or change one (by the piece or by weight, the default figures, areas of provinces
with figures of their own — the template's areas and two empty rows each time —, the
provinces not delivered to, free from an amount), and deleting one that no product names.
The product form chooses a product's template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.config import config_value
from koudai_flask.errors import NotFound, PermissionDenied, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import ShippingTemplate
from koudai_flask.services import freight, shipping_templates
from koudai_flask.services.product_form import fen_to_yuan, yuan_to_fen

PERMISSION = "catalog.edit"
BLANK_AREAS = 2  # empty area rows the form offers after the template's own
_RULE = ("first", "first_fee", "additional", "additional_fee")


def _rule_values(rule: Mapping[str, Any]) -> dict[str, str]:
    """A rule's four figures as the form shows them (fees in yuan)."""
    return {
        "first": str(rule["first"]),
        "first_fee": fen_to_yuan(rule["first_fee"]),
        "additional": str(rule["additional"]),
        "additional_fee": fen_to_yuan(rule["additional_fee"]),
    }


def template_values(template: ShippingTemplate | None) -> dict[str, Any]:
    """What the form shows for ``template`` (a new one: ¥10 for the first piece, ¥5 each)."""
    values: dict[str, Any]
    if template is None:
        values = {"name": "", "basis": "piece", "free_over": "", "excluded": ""}
        values.update(first="1", first_fee="10.00", additional="1", additional_fee="5.00")
        areas: list[dict[str, Any]] = []
    else:
        values = {
            "name": template.name,
            "basis": template.basis,
            "free_over": fen_to_yuan(template.free_over) if template.free_over else "",
            "excluded": "、".join(template.excluded),
            **_rule_values(asdict(freight.default_rule(template))),
        }
        areas = list(template.areas)
    rows = [{"provinces": "、".join(a["provinces"]), **_rule_values(a)} for a in areas]
    blank = dict.fromkeys(("provinces", *_RULE), "")
    values["areas"] = rows + [blank] * min(BLANK_AREAS, shipping_templates.MAX_AREAS - len(rows))
    return values


def posted_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """What was typed, to show again beside a refusal."""
    values: dict[str, Any] = {
        key: form.get(key, "") for key in ("name", "basis", "free_over", "excluded", *_RULE)
    }
    values["areas"] = [
        {key: form.get(f"area-{i}-{key}", "") for key in ("provinces", *_RULE)}
        for i in range(shipping_templates.MAX_AREAS)
        if f"area-{i}-provinces" in form
    ]
    return values


def _whole(text: str, field: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ValidationError(
            f"{field}: {text!r} is not a whole number",
            {field: ["not a whole number"]},
            reason="template_figure",
            detail={"field": field},
        )
    return int(text)


def _rule_input(form: MultiDict[str, str], prefix: str) -> dict[str, int]:
    return {
        "first": _whole(form.get(f"{prefix}first", ""), "first"),
        "first_fee": yuan_to_fen(form.get(f"{prefix}first_fee", "")),
        "additional": _whole(form.get(f"{prefix}additional", ""), "additional"),
        "additional_fee": yuan_to_fen(form.get(f"{prefix}additional_fee", "")),
    }


def template_input(form: MultiDict[str, str]) -> dict[str, Any]:
    """The service's values from the posted form; an area row left empty is no area."""
    free_over = form.get("free_over", "").strip()
    areas = []
    for i in range(shipping_templates.MAX_AREAS):
        prefix = f"area-{i}-"
        typed = [form.get(prefix + key, "").strip() for key in ("provinces", *_RULE)]
        if not any(typed):
            continue
        provinces = freight.split_provinces(typed[0])
        if not provinces:
            raise ValidationError(
                "an area names no province",
                {"areas": ["no province"]},
                reason="area_without_provinces",
            )
        areas.append({"provinces": provinces, **_rule_input(form, prefix)})
    return {
        "name": form.get("name", ""),
        "basis": form.get("basis", ""),
        **_rule_input(form, ""),
        "free_over": yuan_to_fen(free_over) if free_over else None,
        "areas": areas,
        "excluded": freight.split_provinces(form.get("excluded", "")),
    }


def register(bp: Blueprint) -> None:
    @bp.get("/shipping")
    @staff_required(PERMISSION)
    def shipping_list() -> ResponseReturnValue:
        return render_template(
            "koudai/admin/shipping.html",
            templates=shipping_templates.templates(),
            areas_of=freight.areas_of,
            flat_fee=config_value("SHIPPING_FEE"),
            free_over=config_value("FREE_SHIPPING_OVER"),
            form=FlaskForm(),
        )

    def template_form(template_id: int | None) -> ResponseReturnValue:
        template = None
        if template_id is not None:
            try:
                template = shipping_templates.get_template(template_id)
            except NotFound:
                abort(404)
        values, error = template_values(template), None
        if request.method == "POST":
            checked_form()
            values = posted_values(request.form)
            try:
                shipping_templates.save_template(
                    actor_id(), template_id, template_input(request.form)
                )
            except PermissionDenied:
                abort(403)
            except ValidationError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Shipping template saved."), "success")
                return redirect(url_for(".shipping_list"), 303)
        return render_template(
            "koudai/admin/shipping_form.html",
            template=template,
            values=values,
            error=error,
            provinces=freight.PROVINCES,
            form=FlaskForm(),
        ), (422 if error else 200)

    @bp.route("/shipping/new", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def shipping_new() -> ResponseReturnValue:
        return template_form(None)

    @bp.route("/shipping/<int:template_id>", methods=["GET", "POST"])
    @staff_required(PERMISSION)
    def shipping_edit(template_id: int) -> ResponseReturnValue:
        return template_form(template_id)

    @bp.post("/shipping/<int:template_id>/delete")
    @staff_required(PERMISSION)
    def shipping_delete(template_id: int) -> ResponseReturnValue:
        checked_form()
        try:
            shipping_templates.delete_template(actor_id(), template_id)
        except PermissionDenied:
            abort(403)
        except NotFound:
            abort(404)
        except ValidationError as exc:
            flash(refusal_text(exc), "error")
        else:
            flash(_k("Shipping template deleted."), "success")
        return redirect(url_for(".shipping_list"), 303)
