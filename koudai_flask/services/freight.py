"""Shipping templates (运费模板): what sending an order costs, by the piece or by weight and
by the province it goes to.

A product names a template, or none and ships at the shop's flat fee
(``KOUDAI_SHIPPING_FEE``, once per order). An order's fee adds up each template's fee over
that template's goods, plus the flat fee when some goods name no template; an order whose
goods come to ``KOUDAI_FREE_SHIPPING_OVER`` ships free (包邮), and so do a template's goods
that come to its own ``free_over``. Within a template the first ``first`` pieces (or grams)
cost ``first_fee`` and each further ``additional`` or part of it ``additional_fee``
(首件/续件, 首重/续重), with other figures for the provinces an area names, and none at all for
the provinces it does not deliver to (the order is refused, naming the goods).

Provinces are the 34 provincial-level names as short names (浙江, 内蒙古, 香港); an address's
province matches by its start ("浙江省", "内蒙古自治区"). Every change is audited and needs
``catalog.edit``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from koudai_flask.config import config_value
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Product, ShippingTemplate, Sku
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session, unit_of_work

PROVINCES = (
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆",
    "四川", "贵州", "云南", "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆", "台湾", "香港",
    "澳门",
)  # fmt: skip
BASES = ("piece", "weight")
MAX_AREAS = 20
MAX_FEE = 100_000_00  # ¥100,000: a typo, not a fee
MAX_UNITS = 1_000_000  # pieces or grams
_SEPARATORS = re.compile(r"[\s,，、;；/]+")


@dataclass(frozen=True)
class Rule:
    """The first ``first`` units cost ``first_fee``; each further ``additional`` (or part of
    it) ``additional_fee``."""

    first: int
    first_fee: int
    additional: int
    additional_fee: int

    def fee(self, units: int) -> int:
        extra = max(0, units - self.first)
        return self.first_fee + math.ceil(extra / self.additional) * self.additional_fee


@dataclass(frozen=True)
class Area:
    provinces: tuple[str, ...]
    rule: Rule


@dataclass(frozen=True)
class Freight:
    """An order's shipping fee, and the goods that cannot go to its province (titles);
    ``by_province`` when the fee or the delivery depends on the province at all."""

    fee: int
    undeliverable: tuple[str, ...] = ()
    by_province: bool = False


@dataclass(frozen=True)
class Offer:
    """What a product page says about shipping: the fee of one piece (``from_fee`` when
    more cost more), free from ``free_over``, ``elsewhere`` when some provinces differ,
    and the provinces not delivered to."""

    fee: int
    from_fee: bool = False
    free_over: int | None = None
    elsewhere: bool = False
    excluded: tuple[str, ...] = ()


def offer(template_id: int | None) -> Offer:
    """The shipping line of a product with this template (None: the shop's flat fee)."""
    shop_free = config_value("FREE_SHIPPING_OVER")
    if template_id is None:
        return Offer(int(config_value("SHIPPING_FEE")), free_over=shop_free)
    template = get_template(template_id)
    frees = [amount for amount in (template.free_over, shop_free) if amount is not None]
    return Offer(
        template.first_fee,
        from_fee=template.additional_fee > 0,
        free_over=min(frees, default=None),
        elsewhere=bool(template.areas),
        excluded=tuple(template.excluded),
    )


def province_of(text: str | None) -> str | None:
    """The province an address's province field names ("浙江省" → "浙江"), or None."""
    text = (text or "").strip()
    return next((name for name in PROVINCES if text.startswith(name)), None)


def split_provinces(text: str) -> list[str]:
    """Province names typed in one field, separated by commas, 、 or spaces; each checked."""
    names = []
    for word in _SEPARATORS.split(text.strip()):
        if not word:
            continue
        name = province_of(word)
        if name is None or len(word) > len(name) + 6:
            raise ValidationError(
                f"{word!r} is not a province",
                {"provinces": [f"unknown province {word!r}"]},
                reason="unknown_province",
                detail={"name": word},
            )
        if name not in names:
            names.append(name)
    return names


def default_rule(template: ShippingTemplate) -> Rule:
    return Rule(template.first, template.first_fee, template.additional, template.additional_fee)


def areas_of(template: ShippingTemplate) -> list[Area]:
    return [
        Area(
            tuple(area["provinces"]),
            Rule(area["first"], area["first_fee"], area["additional"], area["additional_fee"]),
        )
        for area in template.areas
    ]


def rule_for(template: ShippingTemplate, province: str | None) -> Rule:
    """The template's figures for ``province`` (its default ones when no area names it)."""
    for area in areas_of(template):
        if province in area.provinces:
            return area.rule
    return default_rule(template)


# -- quoting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goods:
    """One line of an order as shipping sees it."""

    sku_id: int
    quantity: int
    line_total: int  # what the buyer pays for the line, in fen


def quote(goods: Sequence[Goods], province: str | None) -> Freight:
    """The shipping fee of ``goods`` sent to ``province`` (None: not known yet, every
    template's default figures and nothing refused)."""
    goods = [line for line in goods if line.quantity > 0]
    subtotal = sum(line.line_total for line in goods)
    if not goods or subtotal <= 0:
        return Freight(0)
    session = current_session()
    rows = session.execute(
        select(Sku.id, Sku.weight_grams, Product.title, Product.shipping_template_id)
        .join(Product, Sku.product_id == Product.id)
        .where(Sku.id.in_({line.sku_id for line in goods}))
    ).all()
    facts = {row.id: row for row in rows}
    template_ids = {row.shipping_template_id for row in rows} - {None}
    templates = {
        t.id: t
        for t in session.scalars(
            select(ShippingTemplate).where(ShippingTemplate.id.in_(template_ids))
        )
    }
    undeliverable = sorted(
        {
            facts[line.sku_id].title
            for line in goods
            if province is not None
            and facts[line.sku_id].shipping_template_id in templates
            and province in templates[facts[line.sku_id].shipping_template_id].excluded
        }
    )
    by_province = any(t.areas or t.excluded for t in templates.values())
    free_over = config_value("FREE_SHIPPING_OVER")
    if free_over is not None and subtotal >= free_over:
        return Freight(0, tuple(undeliverable), by_province)
    fee = 0
    if any(facts[line.sku_id].shipping_template_id is None for line in goods):
        fee += int(config_value("SHIPPING_FEE"))
    for template_id, template in templates.items():
        mine = [line for line in goods if facts[line.sku_id].shipping_template_id == template_id]
        goods_total = sum(line.line_total for line in mine)
        if template.free_over is not None and goods_total >= template.free_over:
            continue
        if template.basis == "weight":
            units = sum(line.quantity * facts[line.sku_id].weight_grams for line in mine)
        else:
            units = sum(line.quantity for line in mine)
        fee += rule_for(template, province).fee(units)
    return Freight(fee, tuple(undeliverable), by_province)


def quote_codes(lines: Sequence[dict[str, Any]], province_text: str | None) -> dict[str, Any]:
    """``quote`` for lines of ``{"sku": code, "quantity": n, "unit_price": fen or None}``
    and an address's province as written; an unknown SKU is ``NotFound``."""
    session = current_session()
    codes = {line["sku"] for line in lines}
    found = {sku.code: sku for sku in session.scalars(select(Sku).where(Sku.code.in_(codes)))}
    missing = sorted(codes - set(found))
    if missing:
        raise NotFound(
            f"unknown SKU {missing[0]!r}", reason="unknown_sku", detail={"sku": missing[0]}
        )
    province = province_of(province_text)
    goods = [
        Goods(
            found[line["sku"]].id,
            line["quantity"],
            line["quantity"]
            * (found[line["sku"]].price if line.get("unit_price") is None else line["unit_price"]),
        )
        for line in lines
    ]
    quoted = quote(goods, province)
    return {"fee": quoted.fee, "province": province, "undeliverable": list(quoted.undeliverable)}


# -- templates -------------------------------------------------------------------------------


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
        staff.audit(
            f"staff:{user_id}",
            "catalog.save_shipping_template",
            "shipping_template",
            str(template.id),
            before,
            _snapshot(template),
        )
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
        session.delete(template)
