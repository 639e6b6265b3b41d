"""Reading the marketing forms: yuan to fen, local times to UTC, blanks to None.

Each reader takes the posted form and returns plain values for the marketing services, or
raises ``ValidationError`` naming the field in the staff member's language. The form's
strings are kept as typed so a refused form comes back filled in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from koudai_flask.config import config_value
from koudai_flask.errors import ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Coupon, LimitedPrice, Promotion, Sku
from koudai_flask.services.catalog_admin import fen_to_yuan, yuan_to_fen
from koudai_flask.services.marketing.coupon_admin import CouponRules
from koudai_flask.services.marketing.promotions import MAX_TIERS

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
COUPON_FIELDS = (
    "code",
    "name",
    "kind",
    "value",
    "min_spend",
    "max_discount",
    "starts_at",
    "ends_at",
    "total_limit",
    "per_customer_limit",
    "size",
    "prefix",
)


def _zone() -> ZoneInfo:
    return ZoneInfo(config_value("TIMEZONE"))


def local_text(value: datetime | None) -> str:
    """A stored UTC time as a ``datetime-local`` field shows it, in the shop's zone."""
    return value.astimezone(_zone()).strftime(LOCAL_FORMAT) if value else ""


def _time(form: MultiDict[str, str], field: str) -> datetime | None:
    text = form.get(field, "").strip()
    if not text:
        return None
    try:
        return datetime.strptime(text[:16], LOCAL_FORMAT).replace(tzinfo=_zone())
    except ValueError:
        raise _bad(field, _k("Give the time as year-month-day hours:minutes.")) from None


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError(message, {field: [message]})


def _fen(form: MultiDict[str, str], field: str, *, required: bool = False) -> int | None:
    text = form.get(field, "").strip()
    if not text:
        if required:
            raise _bad(field, _k("Give an amount in yuan, like 20 or 9.90."))
        return None
    try:
        return yuan_to_fen(text)
    except ValidationError:
        raise _bad(field, _k("Give an amount in yuan, like 20 or 9.90.")) from None


def _count(form: MultiDict[str, str], field: str) -> int | None:
    text = form.get(field, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 7):
        raise _bad(field, _k("Give a whole number, or leave it empty for no limit."))
    return int(text)


def coupon_values(coupon: Coupon | None) -> dict[str, str]:
    """The coupon form's strings for ``coupon`` (a batch shows its first code's rules)."""
    if coupon is None:
        return {field: "" for field in COUPON_FIELDS} | {"kind": "fixed", "size": "100"}
    fixed = coupon.kind == "fixed"
    return {
        "code": coupon.code,
        "name": coupon.name,
        "kind": coupon.kind,
        "value": fen_to_yuan(coupon.value) if fixed else str(coupon.value),
        "min_spend": fen_to_yuan(coupon.min_spend) if coupon.min_spend else "",
        "max_discount": fen_to_yuan(coupon.max_discount) if coupon.max_discount else "",
        "starts_at": local_text(coupon.starts_at),
        "ends_at": local_text(coupon.ends_at),
        "total_limit": "" if coupon.total_limit is None else str(coupon.total_limit),
        "per_customer_limit": ""
        if coupon.per_customer_limit is None
        else str(coupon.per_customer_limit),
        "size": "",
        "prefix": "",
    }


def coupon_rules(form: MultiDict[str, str]) -> CouponRules:
    kind = form.get("kind", "")
    if kind == "percent":
        text = form.get("value", "").strip()
        if not (text.isascii() and text.isdigit() and 1 <= int(text or 0) <= 99):
            raise _bad("value", _k("Give a percentage from 1 to 99."))
        value: int | None = int(text)
    elif kind == "fixed":
        value = _fen(form, "value", required=True)
    else:
        raise _bad("kind", _k("Choose an amount off or a percentage off."))
    assert value is not None
    return CouponRules(
        name=form.get("name", ""),
        kind=kind,
        value=value,
        min_spend=_fen(form, "min_spend") or 0,
        max_discount=_fen(form, "max_discount") if kind == "percent" else None,
        starts_at=_time(form, "starts_at"),
        ends_at=_time(form, "ends_at"),
        total_limit=_count(form, "total_limit"),
        per_customer_limit=_count(form, "per_customer_limit"),
    )


def batch_size(form: MultiDict[str, str]) -> int:
    size = _count(form, "size")
    if size is None:
        raise _bad("size", _k("How many codes? Give a whole number."))
    return size


# -- promotions and limited-time prices ------------------------------------------------------


def promotion_values(promotion: Promotion | None) -> dict[str, Any]:
    tiers = list(promotion.tiers) if promotion else []
    rows = [{"threshold": fen_to_yuan(t["threshold"]), "off": fen_to_yuan(t["off"])} for t in tiers]
    rows += [{"threshold": "", "off": ""}] * (MAX_TIERS - len(rows))
    return {
        "name": promotion.name if promotion else "",
        "starts_at": local_text(promotion.starts_at) if promotion else "",
        "ends_at": local_text(promotion.ends_at) if promotion else "",
        "tiers": rows,
    }


def posted_promotion_values(form: MultiDict[str, str]) -> dict[str, Any]:
    return {
        "name": form.get("name", ""),
        "starts_at": form.get("starts_at", ""),
        "ends_at": form.get("ends_at", ""),
        "tiers": [
            {
                "threshold": form.get(f"tier-{i}-threshold", ""),
                "off": form.get(f"tier-{i}-off", ""),
            }
            for i in range(MAX_TIERS)
        ],
    }


def promotion_input(form: MultiDict[str, str]) -> dict[str, Any]:
    tiers = []
    for i in range(MAX_TIERS):
        threshold = _fen(form, f"tier-{i}-threshold")
        off = _fen(form, f"tier-{i}-off")
        if threshold is None and off is None:
            continue
        if threshold is None or off is None:
            raise _bad("tiers", _k("Each tier needs a threshold and an amount off."))
        tiers.append({"threshold": threshold, "off": off})
    return {
        "name": form.get("name", ""),
        "tiers": tiers,
        "starts_at": _time(form, "starts_at"),
        "ends_at": _time(form, "ends_at"),
    }


def price_values(row: LimitedPrice | None, sku: Sku | None) -> dict[str, str]:
    return {
        "sku": sku.code if sku else "",
        "name": row.name if row else "",
        "price": fen_to_yuan(row.price) if row else "",
        "starts_at": local_text(row.starts_at) if row else "",
        "ends_at": local_text(row.ends_at) if row else "",
    }


def price_input(form: MultiDict[str, str]) -> dict[str, Any]:
    price = _fen(form, "price", required=True)
    starts_at, ends_at = _time(form, "starts_at"), _time(form, "ends_at")
    if starts_at is None or ends_at is None:
        raise _bad("window", _k("Give a start and an end time."))
    return {
        "sku_code": form.get("sku", "").strip(),
        "name": form.get("name", ""),
        "price": price,
        "starts_at": starts_at,
        "ends_at": ends_at,
    }
