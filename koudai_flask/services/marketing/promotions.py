"""Full-reduction promotions (满减): spend a tier's threshold, get its amount off the order.

A promotion has tiers (满 199 减 20, 满 399 减 50); the highest tier the goods reach
applies. When several promotions run at once the buyer gets the best one, never two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Promotion
from koudai_flask.services.marketing.common import (
    MAX_FEN,
    audit,
    check_name,
    check_window,
    require_manager,
    switch,
    whole,
    yuan,
)
from koudai_flask.services.marketing.plugins import (
    ORDER,
    ORDER_DISCOUNTS,
    Adjustment,
    CartContext,
    MarketingPlugin,
)
from koudai_flask.services.transaction import current_session, unit_of_work

MAX_TIERS = 5


def best_tier(tiers: list[dict[str, int]], amount: int) -> dict[str, int] | None:
    """The tier with the highest threshold that ``amount`` reaches, if any."""
    reached = [tier for tier in tiers if amount >= tier["threshold"]]
    return max(reached, key=lambda tier: tier["threshold"]) if reached else None


def describe(promotion: Promotion, tier: dict[str, int]) -> str:
    words = _k(
        "%(off)s off orders of %(threshold)s or more",
        off=yuan(tier["off"]),
        threshold=yuan(tier["threshold"]),
    )
    return f"{promotion.name}: {words}"


class FullReductionPlugin(MarketingPlugin):
    name = "full_reduction"
    stage = ORDER_DISCOUNTS

    def price_adjustments(self, context: CartContext) -> list[Adjustment]:
        now = context.now
        running = context.session.scalars(
            select(Promotion)
            .where(
                Promotion.active.is_(True),
                or_(Promotion.starts_at.is_(None), Promotion.starts_at <= now),
                or_(Promotion.ends_at.is_(None), Promotion.ends_at > now),
            )
            .order_by(Promotion.id)
        ).all()
        best: Adjustment | None = None
        for promotion in running:
            tier = best_tier(promotion.tiers, context.subtotal)
            if tier is None:
                continue
            amount = min(tier["off"], context.remaining)
            if amount > 0 and (best is None or amount > best.amount):
                best = Adjustment(
                    plugin=self.name,
                    scope=ORDER,
                    amount=amount,
                    description=describe(promotion, tier),
                    reference=promotion.id,
                )
        return [best] if best is not None else []


# -- the back office -------------------------------------------------------------------------


def check_tiers(tiers: Any) -> list[dict[str, int]]:
    """Tiers as ``[{"threshold": fen, "off": fen}]``: 1..5, rising, each off below its threshold."""
    if not isinstance(tiers, list) or not 1 <= len(tiers) <= MAX_TIERS:
        message = _k("Give from 1 to %(n)d tiers.", n=MAX_TIERS)
        raise ValidationError(message, {"tiers": [message]})
    checked = []
    for tier in tiers:
        if not isinstance(tier, dict):
            raise ValidationError(_k("Each tier needs a threshold and an amount off."))
        threshold = whole(tier.get("threshold"), "threshold", minimum=1, maximum=MAX_FEN)
        off = whole(tier.get("off"), "off", minimum=1, maximum=MAX_FEN)
        if off >= threshold:
            message = _k("The amount off must be less than the threshold it belongs to.")
            raise ValidationError(message, {"tiers": [message]})
        checked.append({"threshold": threshold, "off": off})
    checked.sort(key=lambda t: t["threshold"])
    thresholds = [t["threshold"] for t in checked]
    offs = [t["off"] for t in checked]
    if len(set(thresholds)) != len(thresholds) or offs != sorted(set(offs)):
        message = _k("Higher thresholds must give more off, and no two thresholds may be equal.")
        raise ValidationError(message, {"tiers": [message]})
    return checked


def _snapshot(promotion: Promotion) -> dict[str, Any]:
    return {
        "name": promotion.name,
        "tiers": promotion.tiers,
        "starts_at": promotion.starts_at.isoformat() if promotion.starts_at else None,
        "ends_at": promotion.ends_at.isoformat() if promotion.ends_at else None,
        "active": promotion.active,
    }


def get_promotion(promotion_id: int) -> Promotion:
    promotion = current_session().get(Promotion, promotion_id)
    if promotion is None:
        raise NotFound(f"unknown promotion {promotion_id}")
    return promotion


def save_promotion(
    user_id: str | int,
    promotion_id: int | None,
    *,
    name: str,
    tiers: Any,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Promotion:
    """Create (``promotion_id`` None) or change a full-reduction promotion."""
    with unit_of_work() as session:
        require_manager(user_id)
        checked_name = check_name(name)
        checked = check_tiers(tiers)
        check_window(starts_at, ends_at)
        promotion = Promotion(active=True) if promotion_id is None else get_promotion(promotion_id)
        before = None if promotion_id is None else _snapshot(promotion)
        promotion.name = checked_name
        promotion.tiers = checked
        promotion.starts_at = starts_at
        promotion.ends_at = ends_at
        session.add(promotion)
        session.flush()
        action = "marketing.promotion_create" if before is None else "marketing.promotion_update"
        audit(user_id, action, "promotion", promotion.id, before, _snapshot(promotion))
        return promotion


def set_promotion_active(user_id: str | int, promotion_id: int, active: bool) -> Promotion:
    with unit_of_work():
        require_manager(user_id)
        promotion = get_promotion(promotion_id)
        switch(
            user_id,
            promotion,
            active,
            action="marketing.promotion_active",
            kind="promotion",
            snapshot=_snapshot,
        )
        return promotion


def promotions() -> list[Promotion]:
    return list(current_session().scalars(select(Promotion).order_by(Promotion.id.desc())))
