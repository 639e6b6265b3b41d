"""Coupons at checkout: checking a code, redeeming a use, giving it back.

Redeeming is race-free without locks held across requests: one conditional UPDATE takes a
use (``used = used + 1 WHERE used < total_limit``), another takes one of the customer's
uses the same way on their counter row, and a unique (coupon, order) redemption row makes a
second redemption for the same order impossible. They run in the placing transaction, after
the stock holds (the same lock order as cancelling, which releases stock before coupons), so
a refusal rolls the whole order back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.orm import Session

from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Coupon, CouponCustomerUse, CouponRedemption
from koudai_flask.models.base import upsert_dialect, utcnow
from koudai_flask.services.marketing.common import yuan
from koudai_flask.services.marketing.plugins import (
    COUPONS,
    ORDER,
    Adjustment,
    CartContext,
    CouponRefused,
    MarketingPlugin,
)

_COUPON = cast(Table, Coupon.__table__)
_USE = cast(Table, CouponCustomerUse.__table__)
_REDEMPTION = cast(Table, CouponRedemption.__table__)


def refusal(reason: str, **values: Any) -> CouponRefused:
    """The refusal for ``reason``, in the buyer's words."""
    messages = {
        "unknown": lambda: _k("This coupon code is not valid."),
        "not_started": lambda: _k("This coupon cannot be used yet."),
        "expired": lambda: _k("This coupon has expired."),
        "used_up": lambda: _k("This coupon has been used up."),
        "sign_in": lambda: _k("Sign in to use this coupon."),
        "customer_limit": lambda: _k("You have already used this coupon."),
        "min_spend": lambda: _k(
            "Spend at least %(amount)s to use this coupon.", amount=values.get("amount", "")
        ),
    }
    return CouponRefused(reason, messages[reason]())


def discount_of(coupon: Coupon, base: int) -> int:
    """What ``coupon`` takes off ``base`` fen: a fixed amount, or a percentage (capped)."""
    if coupon.kind == "fixed":
        amount = coupon.value
    else:
        amount = base * coupon.value // 100
        if coupon.max_discount is not None:
            amount = min(amount, coupon.max_discount)
    return max(0, min(amount, base))


def describe(coupon: Coupon) -> str:
    if coupon.kind == "fixed":
        off = _k("%(amount)s off", amount=yuan(coupon.value))
    else:
        off = _k("%(percent)d%% off", percent=coupon.value)
    return f"{coupon.name or coupon.code} ({off})"


def _customer_uses(session: Session, coupon_id: int, customer_id: int) -> int:
    used = session.scalar(
        select(CouponCustomerUse.used).where(
            CouponCustomerUse.coupon_id == coupon_id, CouponCustomerUse.customer_id == customer_id
        )
    )
    return int(used or 0)


class CouponPlugin(MarketingPlugin):
    """Coupon codes: fixed or percent off, minimum spend, window, total and per-buyer limits."""

    name = "coupon"
    stage = COUPONS

    def price_adjustments(self, context: CartContext) -> list[Adjustment]:
        if not context.coupon_code:
            return []
        session = context.session
        coupon = session.scalar(select(Coupon).where(Coupon.code == context.coupon_code))
        if coupon is None or not coupon.active:
            raise refusal("unknown")
        if coupon.starts_at is not None and context.now < coupon.starts_at:
            raise refusal("not_started")
        if coupon.ends_at is not None and context.now >= coupon.ends_at:
            raise refusal("expired")
        if coupon.total_limit is not None and coupon.used >= coupon.total_limit:
            raise refusal("used_up")
        if coupon.per_customer_limit is not None:
            if context.customer_id is None:
                raise refusal("sign_in")
            uses = _customer_uses(session, coupon.id, context.customer_id)
            if uses >= coupon.per_customer_limit:
                raise refusal("customer_limit")
        if context.subtotal < coupon.min_spend:
            raise refusal("min_spend", amount=yuan(coupon.min_spend))
        amount = discount_of(coupon, context.remaining)
        if amount <= 0:
            return []
        return [
            Adjustment(
                plugin=self.name,
                scope=ORDER,
                amount=amount,
                description=describe(coupon),
                code=coupon.code,
                reference=coupon.id,
            )
        ]

    def redeem(
        self,
        session: Session,
        order_id: int,
        adjustments: Sequence[Adjustment],
        context: CartContext,
    ) -> None:
        connection = session.connection()
        now = context.now
        for adjustment in adjustments:
            coupon_id = adjustment.reference
            assert coupon_id is not None
            taken = connection.execute(
                update(_COUPON)
                .where(
                    _COUPON.c.id == coupon_id,
                    _COUPON.c.active.is_(True),
                    or_(_COUPON.c.total_limit.is_(None), _COUPON.c.used < _COUPON.c.total_limit),
                    or_(_COUPON.c.starts_at.is_(None), _COUPON.c.starts_at <= now),
                    or_(_COUPON.c.ends_at.is_(None), _COUPON.c.ends_at > now),
                )
                .values(used=_COUPON.c.used + 1)
                .returning(_COUPON.c.per_customer_limit)
            ).all()
            if not taken:
                raise refusal("used_up")
            limit = taken[0][0]
            if context.customer_id is not None:
                self._take_customer_use(session, coupon_id, context.customer_id, limit)
            elif limit is not None:
                raise refusal("sign_in")
            connection.execute(
                insert(_REDEMPTION),
                {
                    "coupon_id": coupon_id,
                    "order_id": order_id,
                    "customer_id": context.customer_id,
                    "amount": adjustment.amount,
                    "status": "redeemed",
                    "released_at": None,
                    "created_at": now,
                },
            )

    @staticmethod
    def _take_customer_use(
        session: Session, coupon_id: int, customer_id: int, limit: int | None
    ) -> None:
        """One more use on the customer's counter, refused at ``limit``.

        The counter row is created first if missing (ON CONFLICT DO NOTHING: a concurrent
        first use waits for the other's commit, then sees its row), then taken with a
        conditional UPDATE, which re-reads the row once the other transaction is done.
        """
        connection = session.connection()
        module = upsert_dialect(connection)
        new_row = {"coupon_id": coupon_id, "customer_id": customer_id, "used": 0}
        if module is not None:
            connection.execute(module.insert(_USE).values(new_row).on_conflict_do_nothing())
        elif _customer_uses(session, coupon_id, customer_id) == 0:
            connection.execute(insert(_USE).values(new_row))
        condition = and_(_USE.c.coupon_id == coupon_id, _USE.c.customer_id == customer_id)
        if limit is not None:
            condition = and_(condition, _USE.c.used < limit)
        taken = connection.execute(
            update(_USE).where(condition).values(used=_USE.c.used + 1)
        ).rowcount
        if taken != 1:
            raise refusal("customer_limit")

    def release(self, session: Session, order_id: int) -> None:
        connection = session.connection()
        released = connection.execute(
            update(_REDEMPTION)
            .where(_REDEMPTION.c.order_id == order_id, _REDEMPTION.c.status == "redeemed")
            .values(status="released", released_at=utcnow())
            .returning(_REDEMPTION.c.coupon_id, _REDEMPTION.c.customer_id)
        ).all()
        for coupon_id, customer_id in sorted(released):
            connection.execute(
                update(_COUPON)
                .where(_COUPON.c.id == coupon_id, _COUPON.c.used > 0)
                .values(used=_COUPON.c.used - 1)
            )
            if customer_id is not None:
                connection.execute(
                    update(_USE)
                    .where(
                        _USE.c.coupon_id == coupon_id,
                        _USE.c.customer_id == customer_id,
                        _USE.c.used > 0,
                    )
                    .values(used=_USE.c.used - 1)
                )
