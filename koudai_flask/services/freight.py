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
province matches by its start ("浙江省", "内蒙古自治区"). The templates themselves are made,
changed and given to products by :mod:`koudai_flask.services.shipping_templates`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from koudai_flask.config import config_value
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Product, ShippingTemplate, Sku
from koudai_flask.services.transaction import current_session

PROVINCES = (
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆",
    "四川", "贵州", "云南", "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆", "台湾", "香港",
    "澳门",
)  # fmt: skip
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
    template = current_session().get(ShippingTemplate, template_id)
    if template is None:  # deleted meanwhile: its products ship at the flat fee
        return Offer(int(config_value("SHIPPING_FEE")), free_over=shop_free)
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
