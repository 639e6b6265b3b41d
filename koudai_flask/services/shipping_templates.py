"""Shipping templates (运费模板) as staff keep them: checked, saved, deleted while no product
names one, and given to products. Every change needs ``catalog.edit`` and is audited; what a
template charges is :mod:`koudai_flask.services.freight`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Product, ShippingTemplate
from koudai_flask.services import outbox, staff
from koudai_flask.services.freight import split_provinces
from koudai_flask.services.transaction import current_session, unit_of_work

BASES = ("piece", "weight")
MAX_AREAS = 20
MAX_FEE = 100_000_00  # ¥100,000: a typo, not a fee
MAX_UNITS = 1_000_000  # pieces or grams


def templates() -> list[tuple[ShippingTemplate, int]]:
    """Every template by name, with how many products name it."""
    session = current_session()
    counts = dict(
        session.execute(
            select(Product.shipping_template_id, func.count())
            .where(Product.shipping_template_id.is_not(None))
            .group_by(Product.shipping_template_id)
        ).all()
    )
    found = session.scalars(select(ShippingTemplate).order_by(ShippingTemplate.name))
    return [(template, counts.get(template.id, 0)) for template in found]


def get_template(template_id: int) -> ShippingTemplate:
    template = current_session().get(ShippingTemplate, template_id)
    if template is None:
        raise NotFound(f"no shipping template {template_id}", reason="unknown_template")
    return template


def template_named(name: str | None) -> int | None:
    """The id of the template called ``name`` (None for None); an unknown name is refused."""
    if name is None:
        return None
    found = current_session().scalar(
        select(ShippingTemplate.id).where(ShippingTemplate.name == name.strip())
    )
    if found is None:
        raise ValidationError(
            f"no shipping template named {name!r}",
            {"shipping_template": ["unknown"]},
            reason="template_unknown",
            detail={"name": name},
        )
    return found


def _figure(value: Any, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"shipping template: {field} must be a whole number from {low} to {high}",
            {field: [f"must be from {low} to {high}"]},
            reason="template_figure",
            detail={"field": field},
        )
    return value


def _rule(values: dict[str, Any], field: str) -> dict[str, int]:
    return {
        "first": _figure(values.get("first"), f"{field}first", low=1, high=MAX_UNITS),
        "first_fee": _figure(values.get("first_fee"), f"{field}first_fee", low=0, high=MAX_FEE),
        "additional": _figure(
            values.get("additional"), f"{field}additional", low=1, high=MAX_UNITS
        ),
        "additional_fee": _figure(
            values.get("additional_fee"), f"{field}additional_fee", low=0, high=MAX_FEE
        ),
    }


def _provinces(names: Iterable[str]) -> list[str]:
    return split_provinces("、".join(names))


def check_template(values: dict[str, Any]) -> dict[str, Any]:
    """The columns of a template from ``values``, or a ValidationError naming what is wrong."""
    name = (values.get("name") or "").strip()
    if not 1 <= len(name) <= 40:
        raise ValidationError(
            "a shipping template needs a name of at most 40 characters",
            {"name": ["1 to 40 characters"]},
            reason="template_name",
        )
    basis = values.get("basis")
    if basis not in BASES:
        raise ValidationError(
            f"basis must be one of {', '.join(BASES)}",
            {"basis": ["unknown"]},
            reason="template_basis",
        )
    free_over = values.get("free_over")
    if free_over is not None:
        free_over = _figure(free_over, "free_over", low=1, high=MAX_FEE)
    areas, seen = [], set()
    given = list(values.get("areas") or [])
    if len(given) > MAX_AREAS:
        raise ValidationError(
            f"at most {MAX_AREAS} areas",
            {"areas": ["too many"]},
            reason="template_areas",
            detail={"most": MAX_AREAS},
        )
    excluded = _provinces(values.get("excluded") or [])
    seen.update(excluded)
    for index, area in enumerate(given):
        provinces = _provinces(area.get("provinces") or [])
        if not provinces:
            raise ValidationError(
                "an area names no province",
                {"areas": ["no province"]},
                reason="area_without_provinces",
            )
        twice = [name for name in provinces if name in seen]
        if twice:
            raise ValidationError(
                f"{twice[0]} is named twice in the template",
                {"areas": [f"{twice[0]} twice"]},
                reason="province_twice",
                detail={"name": twice[0]},
            )
        seen.update(provinces)
        areas.append({"provinces": provinces, **_rule(area, f"area_{index}_")})
    return {
        "name": name,
        "basis": basis,
        **_rule(values, ""),
        "free_over": free_over,
        "areas": areas,
        "excluded": excluded,
    }


def _snapshot(template: ShippingTemplate) -> dict[str, Any]:
    return {
        "name": template.name,
        "basis": template.basis,
        "first": template.first,
        "first_fee": template.first_fee,
        "additional": template.additional,
        "additional_fee": template.additional_fee,
        "free_over": template.free_over,
        "areas": template.areas,
        "excluded": template.excluded,
    }


def save_template(
    user_id: str, template_id: int | None, values: dict[str, Any]
) -> ShippingTemplate:
    """Create (``template_id=None``) or change a template, audited."""
    staff.require(user_id, "catalog.edit")
    columns = check_template(values)
    with unit_of_work() as session:
        taken = session.scalar(
            select(ShippingTemplate.id).where(ShippingTemplate.name == columns["name"])
        )
        if taken is not None and taken != template_id:
            raise ValidationError(
                f"a shipping template named {columns['name']!r} exists",
                {"name": ["taken"]},
                reason="template_name_taken",
                detail={"name": columns["name"]},
            )
        before = None
        if template_id is None:
            template = ShippingTemplate(**columns)
            session.add(template)
        else:
            template = get_template(template_id)
            before = _snapshot(template)
            for key, value in columns.items():
                setattr(template, key, value)
        session.flush()
        after = _snapshot(template)
        staff.audit(
            f"staff:{user_id}",
            "catalog.save_shipping_template",
            "shipping_template",
            str(template.id),
            before,
            after,
        )
        if after != before:  # a channel or ERP charging the same fees follows
            topic = "created" if before is None else "updated"
            outbox.record(session, f"shipping_template.{topic}", {"id": template.id, **after})
        return template


def delete_template(user_id: str, template_id: int) -> None:
    """Delete a template no product names (one in use is refused: its products' fees would
    change without anyone choosing so)."""
    staff.require(user_id, "catalog.edit")
    with unit_of_work() as session:
        template = get_template(template_id)
        used = session.scalar(
            select(func.count()).where(Product.shipping_template_id == template.id)
        )
        if used:
            raise ValidationError(
                f"{used} products use shipping template {template.name!r}",
                reason="template_in_use",
                detail={"name": template.name, "count": used},
            )
        staff.audit(
            f"staff:{user_id}",
            "catalog.delete_shipping_template",
            "shipping_template",
            str(template.id),
            _snapshot(template),
            None,
        )
        outbox.record(
            session, "shipping_template.deleted", {"id": template.id, "name": template.name}
        )
        session.delete(template)


MAX_ASSIGN = 200  # products given a template at once (a page of the list is 50)


def assign(user_id: str, product_ids: Iterable[int], template_id: int | None) -> int:
    """Give the products ``template_id`` (None: the flat fee); returns how many changed.

    One audit entry per product that changed; an unknown product or template changes none.
    """
    staff.require(user_id, "catalog.edit")
    wanted = sorted(set(product_ids))
    if not wanted or len(wanted) > MAX_ASSIGN:
        raise ValidationError(
            f"tick 1 to {MAX_ASSIGN} products",
            {"products": [f"1 to {MAX_ASSIGN}"]},
            reason="products_to_assign",
            detail={"most": MAX_ASSIGN},
        )
    with unit_of_work() as session:
        template = None if template_id is None else get_template(template_id)
        products = session.scalars(select(Product).where(Product.id.in_(wanted))).all()
        if len(products) != len(wanted):
            raise NotFound("a ticked product no longer exists")
        names: dict[int | None, str] = {
            t.id: t.name for t in session.scalars(select(ShippingTemplate))
        }
        changed = 0
        for product in products:
            if product.shipping_template_id == (template.id if template else None):
                continue
            before = {"shipping_template": names.get(product.shipping_template_id)}
            product.shipping_template_id = template.id if template else None
            staff.audit(
                f"staff:{user_id}",
                "catalog.set_shipping_template",
                "product",
                str(product.id),
                before,
                {"shipping_template": template.name if template else None},
            )
            changed += 1
        return changed
