"""Coupons in the back office: single codes, batches of generated codes, their CSV.

Batch codes are drawn with ``secrets`` from an alphabet without look-alike characters
(no 0/O, 1/I/L), 12 of them: about 59 bits, so codes cannot be guessed from one another.
Every write needs ``marketing.manage`` and is audited in its own transaction.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Coupon, CouponBatch
from koudai_flask.services.marketing.common import (
    MAX_COUNT,
    MAX_FEN,
    audit,
    check_name,
    check_window,
    optional_whole,
    require_manager,
    switch,
    whole,
)
from koudai_flask.services.transaction import current_session, unit_of_work

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
MAX_BATCH = 10_000
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{3,39}$")
_PREFIX = re.compile(r"^[A-Z0-9]{0,8}$")


@dataclass(frozen=True)
class CouponRules:
    """What a coupon gives and when: shared by a single code and every code of a batch."""

    name: str
    kind: str  # "fixed" (value in fen) or "percent" (value 1..99)
    value: int
    min_spend: int = 0
    max_discount: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    total_limit: int | None = None
    per_customer_limit: int | None = None


def check_rules(rules: CouponRules) -> CouponRules:
    """``rules`` with a trimmed name, or a ValidationError naming the field at fault."""
    name = check_name(rules.name)
    if rules.kind not in ("fixed", "percent"):
        raise ValidationError(_k("Choose an amount off or a percentage off."), {"kind": ["bad"]})
    if rules.kind == "percent":
        whole(rules.value, "value", minimum=1, maximum=99)
    else:
        whole(rules.value, "value", minimum=1, maximum=MAX_FEN)
    whole(rules.min_spend, "min_spend", minimum=0, maximum=MAX_FEN)
    optional_whole(rules.max_discount, "max_discount", minimum=1, maximum=MAX_FEN)
    optional_whole(rules.total_limit, "total_limit", minimum=1, maximum=MAX_COUNT)
    optional_whole(rules.per_customer_limit, "per_customer_limit", minimum=1, maximum=MAX_COUNT)
    check_window(rules.starts_at, rules.ends_at)
    if rules.kind == "fixed" and rules.max_discount is not None:
        rules = CouponRules(**{**asdict(rules), "max_discount": None})
    return CouponRules(**{**asdict(rules), "name": name})


def _apply(coupon: Coupon, rules: CouponRules) -> None:
    if rules.total_limit is not None and rules.total_limit < coupon.used:
        message = _k(
            "This coupon was already used %(n)d times; the limit cannot be lower.", n=coupon.used
        )
        raise ValidationError(message, {"total_limit": [message]})
    for key, value in asdict(rules).items():
        setattr(coupon, key, value)


def snapshot(coupon: Coupon) -> dict[str, Any]:
    values = {key: getattr(coupon, key) for key in CouponRules.__dataclass_fields__}
    for key in ("starts_at", "ends_at"):
        values[key] = values[key].isoformat() if values[key] else None
    return {"code": coupon.code, "active": coupon.active, **values}


def rules_of(coupon: Coupon) -> CouponRules:
    return CouponRules(**{key: getattr(coupon, key) for key in CouponRules.__dataclass_fields__})


def check_code(code: str) -> str:
    cleaned = "".join((code or "").split()).upper()
    if not _CODE.match(cleaned):
        message = _k("A code has 4 to 40 letters, digits, '-' or '_'.")
        raise ValidationError(message, {"code": [message]})
    return cleaned


def get_coupon(coupon_id: int) -> Coupon:
    coupon = current_session().get(Coupon, coupon_id)
    if coupon is None:
        raise NotFound(f"unknown coupon {coupon_id}")
    return coupon


def create_coupon(user_id: str | int, code: str, rules: CouponRules) -> Coupon:
    """One code anyone may type (within its limits)."""
    with unit_of_work() as session:
        require_manager(user_id)
        checked_code = check_code(code)
        checked = check_rules(rules)
        if session.scalar(select(Coupon.id).where(Coupon.code == checked_code)) is not None:
            message = _k("The code %(code)s exists already.", code=checked_code)
            raise ValidationError(message, {"code": [message]})
        coupon = Coupon(code=checked_code, used=0, active=True)
        _apply(coupon, checked)
        session.add(coupon)
        session.flush()
        audit(user_id, "marketing.coupon_create", "coupon", coupon.id, None, snapshot(coupon))
        return coupon


def update_coupon(user_id: str | int, coupon_id: int, rules: CouponRules) -> Coupon:
    """New rules for a code; its code and use count stay."""
    with unit_of_work() as session:
        require_manager(user_id)
        checked = check_rules(rules)
        coupon = get_coupon(coupon_id)
        before = snapshot(coupon)
        _apply(coupon, checked)
        session.flush()
        audit(user_id, "marketing.coupon_update", "coupon", coupon.id, before, snapshot(coupon))
        return coupon


def set_coupon_active(user_id: str | int, coupon_id: int, active: bool) -> Coupon:
    with unit_of_work():
        require_manager(user_id)
        coupon = get_coupon(coupon_id)
        switch(
            user_id,
            coupon,
            active,
            action="marketing.coupon_active",
            kind="coupon",
            snapshot=snapshot,
        )
        return coupon


def single_coupons() -> list[Coupon]:
    return list(
        current_session().scalars(
            select(Coupon).where(Coupon.batch_id.is_(None)).order_by(Coupon.id.desc())
        )
    )


# -- batches ---------------------------------------------------------------------------------


def generate_codes(count: int, prefix: str = "") -> list[str]:
    """``count`` distinct random codes, none of them already in use."""
    session = current_session()
    codes: set[str] = set()
    while len(codes) < count:
        wanted = count - len(codes)
        drawn = {
            prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            for _ in range(wanted)
        }
        drawn -= codes
        taken: set[str] = set()
        for start in range(0, len(drawn), 1000):
            chunk = sorted(drawn)[start : start + 1000]
            taken.update(session.scalars(select(Coupon.code).where(Coupon.code.in_(chunk))))
        codes |= drawn - taken
    return sorted(codes)


def create_batch(
    user_id: str | int, name: str, size: int, rules: CouponRules, *, prefix: str = ""
) -> CouponBatch:
    """``size`` single codes with the same rules (each usable ``total_limit`` times, default 1)."""
    with unit_of_work() as session:
        member = require_manager(user_id)
        checked_name = check_name(name)
        whole(size, "size", minimum=1, maximum=MAX_BATCH)
        cleaned_prefix = (prefix or "").strip().upper()
        if not _PREFIX.match(cleaned_prefix):
            message = _k("A prefix has at most 8 letters or digits.")
            raise ValidationError(message, {"prefix": [message]})
        if rules.total_limit is None:
            rules = CouponRules(**{**asdict(rules), "total_limit": 1})
        checked = check_rules(rules)
        batch = CouponBatch(name=checked_name, size=size, created_by=member.user_id)
        session.add(batch)
        session.flush()
        values = {**asdict(checked), "used": 0, "active": True, "batch_id": batch.id}
        session.add_all(
            Coupon(code=code, **values) for code in generate_codes(size, cleaned_prefix)
        )
        session.flush()
        audit(
            user_id,
            "marketing.batch_create",
            "coupon_batch",
            batch.id,
            None,
            {"name": batch.name, "size": size, **snapshot_rules(checked)},
        )
        return batch


def snapshot_rules(rules: CouponRules) -> dict[str, Any]:
    values = asdict(rules)
    for key in ("starts_at", "ends_at"):
        values[key] = values[key].isoformat() if values[key] else None
    return values


def get_batch(batch_id: int) -> CouponBatch:
    batch = current_session().get(CouponBatch, batch_id)
    if batch is None:
        raise NotFound(f"unknown coupon batch {batch_id}")
    return batch


def batch_rules(batch: CouponBatch) -> CouponRules:
    first = current_session().scalar(
        select(Coupon).where(Coupon.batch_id == batch.id).order_by(Coupon.id).limit(1)
    )
    assert first is not None
    return rules_of(first)


def update_batch(user_id: str | int, batch_id: int, rules: CouponRules) -> CouponBatch:
    """New rules for every code of the batch; refused if a code is used beyond the new limit."""
    with unit_of_work() as session:
        require_manager(user_id)
        checked = check_rules(rules)
        batch = get_batch(batch_id)
        before = snapshot_rules(batch_rules(batch))
        if checked.total_limit is not None:
            most = session.scalar(select(func.max(Coupon.used)).where(Coupon.batch_id == batch.id))
            if (most or 0) > checked.total_limit:
                message = _k(
                    "A code of this batch was used %(n)d times; the limit cannot be lower.", n=most
                )
                raise ValidationError(message, {"total_limit": [message]})
        session.execute(
            update(Coupon)
            .where(Coupon.batch_id == batch.id)
            .values(**asdict(checked))
            .execution_options(synchronize_session=False)
        )
        batch.name = checked.name
        session.expire_all()
        audit(
            user_id,
            "marketing.batch_update",
            "coupon_batch",
            batch.id,
            before,
            snapshot_rules(checked),
        )
        return batch


def set_batch_active(user_id: str | int, batch_id: int, active: bool) -> CouponBatch:
    with unit_of_work() as session:
        require_manager(user_id)
        batch = get_batch(batch_id)
        session.execute(
            update(Coupon)
            .where(Coupon.batch_id == batch.id)
            .values(active=active)
            .execution_options(synchronize_session=False)
        )
        session.expire_all()
        audit(user_id, "marketing.batch_active", "coupon_batch", batch.id, None, {"active": active})
        return batch


def batch_usage(batch_id: int) -> tuple[int, int, int]:
    """(codes, codes used at least once, codes still active)."""
    row = (
        current_session()
        .execute(
            select(
                func.count(),
                func.count().filter(Coupon.used > 0),
                func.count().filter(Coupon.active.is_(True)),
            ).where(Coupon.batch_id == batch_id)
        )
        .one()
    )
    return int(row[0]), int(row[1]), int(row[2])


def batches() -> list[CouponBatch]:
    return list(current_session().scalars(select(CouponBatch).order_by(CouponBatch.id.desc())))


def batch_csv(user_id: str | int, batch_id: int) -> str:
    """The batch's codes as CSV (code, uses, limit, active) for printing or mailing."""
    require_manager(user_id)
    batch = get_batch(batch_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["code", "used", "limit", "active"])
    for code, used, limit, active in current_session().execute(
        select(Coupon.code, Coupon.used, Coupon.total_limit, Coupon.active)
        .where(Coupon.batch_id == batch.id)
        .order_by(Coupon.code)
    ):
        writer.writerow([code, used, "" if limit is None else limit, "yes" if active else "no"])
    return out.getvalue()
