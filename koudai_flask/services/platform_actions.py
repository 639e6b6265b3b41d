"""What an API key does: orders from external channels, order actions, stock changes.

Each function acts as the key's owner, through the same checked and audited services the
back office uses, and never outside the key's channels (an order or SKU there is 404).
Stock changes are audited as the owner's, naming the key, and take an optional
compare-and-set: ``expected_on_hand`` must still be the count, checked and changed under the
level's row lock, or ``StaleQuantity`` (409) and nothing changes.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from koudai_flask import payments
from koudai_flask.errors import KoudaiError, NotFound, ValidationError
from koudai_flask.models import Channel, Order, Sku, StockLevel, StockMovement
from koudai_flask.services import (
    backoffice,
    catalog,
    inventory,
    order_sync,
    orders,
    refunds,
    staff,
)
from koudai_flask.services.api_keys import Principal
from koudai_flask.services.ledger import StockSnapshot, get_location, get_sku, stock_level
from koudai_flask.services.order_sync import CHANNEL_PROVIDER
from koudai_flask.services.platform_reads import check_stock_scope, order
from koudai_flask.services.transaction import current_session, unit_of_work


class StaleQuantity(KoudaiError):
    """The on-hand count is no longer the one the caller expected (compare-and-set)."""

    http_status = 409

    def __init__(self, sku: str, expected: int, actual: int) -> None:
        super().__init__(f"SKU {sku!r}: on hand is {actual}, not the expected {expected}")
        self.messages = {"expected_on_hand": [f"on hand is now {actual}"]}
        self.detail = {"sku": sku, "expected_on_hand": expected, "on_hand": actual}


def _actor(who: Principal) -> str:
    return f"staff:{who.user_id}"


def _levels(sku_code: str, location: str | None) -> dict[str, int]:
    session = current_session()
    row = session.execute(
        select(StockLevel.on_hand, StockLevel.reserved).where(
            StockLevel.sku_id == get_sku(session, sku_code).id,
            StockLevel.location_id == get_location(session, location).id,
        )
    ).first()
    return (
        {"on_hand": row.on_hand, "reserved": row.reserved} if row else {"on_hand": 0, "reserved": 0}
    )


def _audit_stock(
    who: Principal,
    action: str,
    sku_code: str,
    before: dict[str, int],
    after: StockSnapshot,
    details: dict[str, Any],
) -> None:
    """Audit a stock change made through the API as its owner's, naming the key. A call
    that moved nothing (a count that confirms the figure, a ledger replay) is not a change."""
    if after.on_hand == before["on_hand"]:
        return
    values = {"on_hand": after.on_hand, "reserved": after.reserved, "api_key": who.key_prefix}
    staff.audit(_actor(who), action, "sku", sku_code, before, {**values, **details})


# -- orders ----------------------------------------------------------------------------------


def create_order(who: Principal, data: dict[str, Any]) -> Order:
    """Place an order that came from an external channel (not the own shop ``web``).

    The same ``(channel, external_id)`` again returns the first order; with other lines it
    is a ``ValidationError``.
    """
    name = data["channel"]
    if not who.sees_channel(name):
        raise NotFound(f"unknown channel {name!r}")
    session = current_session()
    channel = session.scalar(select(Channel).where(Channel.name == name))
    if channel is None:
        raise NotFound(f"unknown channel {name!r}")
    if channel.kind == "web":
        raise ValidationError(
            "the own shop's orders come from its checkout; name an external channel",
            {"channel": ["not an external channel"]},
        )
    if not channel.active:
        raise ValidationError(f"channel {name!r} is switched off", {"channel": ["inactive"]})
    staff.require(who.user_id, "channels.manage", channel=name)
    existed = session.scalar(
        select(Order.id).where(Order.channel == name, Order.external_id == data["external_id"])
    )
    session.rollback()
    placed = orders.place(
        channel=name,
        lines=data["lines"],
        address=data["address"],
        external_id=data["external_id"],
        shipping_fee=data["shipping_fee"],
        note=data["note"],
        actor=_actor(who),
    )
    if existed is None:
        order_sync.record_sold_there(name, placed.number, data["external_id"])
        with unit_of_work():
            staff.audit(
                _actor(who),
                "orders.create",
                "order",
                placed.number,
                None,
                {"channel": name, "external_id": data["external_id"], "total": placed.total},
            )
    return order(who, placed.number)


def pay(who: Principal, number: str, *, amount: int, transaction_id: str) -> Order:
    """Record that the channel took the money (provider ``api:<channel>``)."""
    with unit_of_work():
        found = order(who, number, "orders.mark_paid")
        before = found.status
        orders.mark_paid(
            number,
            amount=amount,
            transaction_id=transaction_id,
            provider=f"api:{found.channel}"[:32],
            actor=_actor(who),
        )
        staff.audit(
            _actor(who),
            "orders.mark_paid",
            "order",
            number,
            {"status": before},
            {"status": "paid", "transaction_id": transaction_id},
        )
    return order(who, number)


def ship(
    who: Principal,
    number: str,
    *,
    carrier: str,
    tracking_number: str,
    lines: dict[str, int] | None,
) -> Order:
    order(who, number, "orders.ship")
    backoffice.ship(
        who.user_id, number, carrier=carrier, tracking_number=tracking_number, lines=lines
    )
    return order(who, number)


def cancel(who: Principal, number: str, *, reason: str) -> Order:
    order(who, number, "orders.cancel")
    backoffice.cancel(who.user_id, number, reason=reason or "cancelled through the API")
    return order(who, number)


def decline_refund(who: Principal, number: str, *, reason: str) -> Order:
    order(who, number, "orders.refund")
    backoffice.decline_refund(who.user_id, number, reason=reason)
    return order(who, number)


def agree_return(who: Principal, number: str) -> Order:
    order(who, number, "orders.refund")
    backoffice.agree_return(who.user_id, number)
    return order(who, number)


def refund(
    who: Principal,
    number: str,
    *,
    amount: int | None,
    reason: str,
    restock: bool = False,
    lines: dict[str, int] | None = None,
    settles: bool = False,
) -> Order:
    """Refund through the provider that took the money; a channel's payment is recorded only.

    An order paid on its channel (recorded through the API) was refunded there: this only
    records it, as the full ``refunding → refunded`` step or a partial ``Refund``. A
    marketplace order the sync brought in is refused instead (``refund_on_channel``): its
    refunds are mirrored from the marketplace. ``lines`` (``{sku: units}``) names the units
    refunded (``services.returns``); ``restock`` says the parcel came back: what the order
    shipped (a full refund) or those units go back on the shelf, either way.
    """
    found = order(who, number, "orders.refund")
    provider = found.payments[0].provider if found.payments else None
    if provider is None or provider in payments.enabled() or provider == CHANNEL_PROVIDER:
        # A marketplace order synced here is refunded there and mirrored (channel_refunds):
        # the back office refuses it (refund_on_channel) rather than record it twice.
        backoffice.refund(
            who.user_id,
            number,
            amount=amount,
            reason=reason,
            restock=restock,
            lines=lines,
            settles=settles,
        )
        return order(who, number)
    with unit_of_work() as session:
        found = order(who, number, "orders.refund")
        value, left, wanted = refunds.value_of(found, amount, lines, restock=restock)
        if settles and value < left:
            refunds.check_settles(session, found)
        before = {"status": found.status, "refunded": found.refunded_amount}
        refund_no = f"{number}-R{secrets.token_hex(4)}"
        returned = refunds.record(
            found,
            value=value,
            left=left,
            lines=wanted,
            reason=reason,
            refund_no=refund_no,
            actor=_actor(who),
            restock=restock,
            asked=reason or "refund on the channel",
            settles=settles,
        )
        session.refresh(found)
        staff.audit(
            _actor(who),
            "orders.refund",
            "order",
            number,
            before,
            {
                "status": found.status,
                "refunded": found.refunded_amount,
                "amount": value,
                **({"lines": wanted} if wanted else {}),
                **({"restocked": returned} if restock and not wanted else {}),
            },
        )
    return order(who, number)


# -- stock -----------------------------------------------------------------------------------


def _replayed(idempotency_key: str | None) -> bool:
    if idempotency_key is None:
        return False
    session = current_session()
    found = session.scalar(
        select(StockMovement.id).where(StockMovement.idempotency_key == idempotency_key)
    )
    session.rollback()
    return found is not None


def _hold_if_current(sku_code: str, location: str | None, expected: int) -> None:
    """Lock the level row if its on-hand count is ``expected``; else ``StaleQuantity``."""
    session = current_session()
    level = stock_level(session, get_sku(session, sku_code), get_location(session, location))
    held = session.execute(
        update(StockLevel)
        .execution_options(synchronize_session=False)
        .where(StockLevel.id == level.id, StockLevel.on_hand == expected)
        .values(on_hand=StockLevel.on_hand)
    ).rowcount  # type: ignore[attr-defined]
    if held != 1:
        session.refresh(level)
        raise StaleQuantity(sku_code, expected, level.on_hand)


def adjust_stock(
    who: Principal,
    sku_code: str,
    *,
    delta: int,
    reason: str,
    note: str,
    location: str | None,
    expected_on_hand: int | None,
    idempotency_key: str | None,
) -> StockSnapshot:
    staff.require(who.user_id, "stock.adjust")
    check_stock_scope(who, sku_code)
    if expected_on_hand is None or _replayed(idempotency_key):
        expected_on_hand = None  # a replay returns the first result, whatever the count now
    with unit_of_work():
        if expected_on_hand is not None:
            _hold_if_current(sku_code, location, expected_on_hand)
        before = _levels(sku_code, location)
        after = inventory.adjust(
            sku_code,
            delta,
            reason=reason,
            source=f"api:{who.key_prefix}",
            note=note,
            idempotency_key=idempotency_key,
            location=location,
        )
        _audit_stock(who, "stock.adjust", sku_code, before, after, {"reason": reason})
        return after


def count_stock(
    who: Principal,
    sku_code: str,
    *,
    quantity: int,
    location: str | None,
    expected_on_hand: int | None,
    idempotency_key: str | None,
) -> StockSnapshot:
    staff.require(who.user_id, "stock.adjust")
    check_stock_scope(who, sku_code)
    if expected_on_hand is None or _replayed(idempotency_key):
        expected_on_hand = None
    with unit_of_work():
        if expected_on_hand is not None:
            _hold_if_current(sku_code, location, expected_on_hand)
        before = _levels(sku_code, location)
        after = inventory.set_on_hand(
            sku_code,
            quantity,
            source=f"api:{who.key_prefix}",
            idempotency_key=idempotency_key,
            location=location,
        )
        _audit_stock(who, "stock.count", sku_code, before, after, {"counted": quantity})
        return after


def snapshot(who: Principal, sku_code: str, location: str | None) -> StockSnapshot:
    staff.require(who.user_id, "stock.adjust")
    check_stock_scope(who, sku_code)
    session = current_session()
    level = session.scalar(
        select(StockLevel).where(
            StockLevel.sku_id == get_sku(session, sku_code).id,
            StockLevel.location_id == get_location(session, location).id,
        )
    )
    if level is None:
        return StockSnapshot(sku_code, location or get_location(session, None).code, 0, 0)
    return StockSnapshot(sku_code, level.location.code, level.on_hand, level.reserved)


# -- catalog ---------------------------------------------------------------------------------


def create_product(who: Principal, data: dict[str, Any]) -> int:
    """A product with its SKUs (their ``stock`` is the opening count); returns its id."""
    staff.require(who.user_id, "catalog.edit")
    try:
        with unit_of_work():
            product = catalog.create_product(**data, source=f"api:{who.key_prefix}")
            staff.audit(
                _actor(who),
                "catalog.create_product",
                "product",
                str(product.id),
                None,
                {"title": product.title, "skus": [s["code"] for s in data["skus"]]},
            )
            return product.id
    except IntegrityError:
        # A concurrent request took the same SKU code or slug first.
        raise ValidationError(
            "a SKU code or the slug is already taken", {"skus": ["already exists"]}
        ) from None


def update_sku(who: Principal, code: str, changes: dict[str, Any]) -> None:
    staff.require(who.user_id, "catalog.edit")
    if not changes:
        raise ValidationError("send at least one field to change", {"_schema": ["empty"]})
    with unit_of_work() as session:
        before = session.scalar(select(Sku).where(Sku.code == code))
        if before is None:
            raise NotFound(f"unknown SKU {code!r}", reason="unknown_sku", detail={"sku": code})
        old = {name: getattr(before, name) for name in changes}
        catalog.update_sku(code, **changes)
        staff.audit(_actor(who), "catalog.update_sku", "sku", code, old, dict(changes))
