"""What staff do to orders, on behalf of a named staff member: checked, scoped, audited.

Every function takes the acting member's user id first. It raises ``PermissionDenied``
when the member lacks the permission, ``NotFound`` when the order is outside their channel
scope (for them it does not exist), and writes an ``AuditEntry`` with the before and after
of what it changed, in the same transaction.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import selectinload

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import (
    Customer,
    Order,
    OrderNote,
    StaffMember,
)
from koudai_flask.services import order_address, order_search, orders, refunds, returns, staff
from koudai_flask.services.order_sync import CHANNEL_PROVIDER
from koudai_flask.services.shipping import TRACKING_NUMBER
from koudai_flask.services.transaction import current_session, unit_of_work


def order_for(user_id: str, number: str, permission: str = "orders.view") -> Order:
    """An order the member may act on with ``permission``; out of scope is NotFound."""
    member = staff.get_member(user_id)
    order = current_session().scalar(
        select(Order).where(Order.number == number).options(selectinload(Order.lines))
    )
    scope = staff.visible_channels(member)
    if order is None or (scope is not None and order.channel not in scope):
        raise NotFound(
            f"unknown order {number!r}", reason="unknown_order", detail={"number": number}
        )
    staff.require(user_id, permission, channel=order.channel)
    return order


def _snapshot(order: Order) -> dict[str, Any]:
    return {
        "status": order.status,
        "shipped": {line.sku_code: line.shipped_quantity for line in order.lines},
        "refunded": order.refunded_amount,
    }


def ship(
    user_id: str,
    number: str,
    *,
    carrier: str,
    tracking_number: str,
    lines: dict[str, int] | None = None,
) -> Order:
    """Staff send a parcel. The tracking number is one a carrier could have printed:
    letters, digits and ``-`` (channels and ERPs report theirs as they are)."""
    shown = (tracking_number or "").strip()
    with unit_of_work() as session:
        order = order_for(user_id, number, "orders.ship")
        if shown and not TRACKING_NUMBER.fullmatch(shown):
            raise ValidationError(
                f"tracking number {shown!r}: 4 to 64 letters, digits or -",
                reason="tracking_format",
                detail={"tracking_number": shown[:64]},
            )
        before = _snapshot(order)
        orders.ship(
            number,
            carrier=carrier,
            tracking_number=tracking_number,
            lines=lines,
            actor=f"staff:{user_id}",
        )
        session.refresh(order)
        staff.audit(
            f"staff:{user_id}",
            "orders.ship",
            "order",
            number,
            before,
            {**_snapshot(order), "carrier": carrier, "tracking_number": tracking_number},
        )
        return order


def cancel(user_id: str, number: str, *, reason: str) -> Order:
    with unit_of_work() as session:
        order = order_for(user_id, number, "orders.cancel")
        before = _snapshot(order)
        orders.cancel(number, reason=reason or "cancelled by staff", actor=f"staff:{user_id}")
        session.refresh(order)
        staff.audit(
            f"staff:{user_id}",
            "orders.cancel",
            "order",
            number,
            before,
            {**_snapshot(order), "reason": reason},
        )
        return order


def refund(
    user_id: str,
    number: str,
    *,
    amount: int | None,
    reason: str,
    restock: bool = False,
    lines: dict[str, int] | None = None,
    settles: bool = False,
) -> Order:
    """Refund through the provider that took the money, then record it on the order.

    ``amount=None`` refunds everything left (passing through ``refunding``), or what
    ``lines`` (``{sku: units}``) cost. If the provider refuses, nothing is recorded. Money
    that staff recorded as paid offline (``mark_paid_offline``) went back the same way, by
    hand: the refund is recorded only. With ``restock`` the parcel came back: for a full
    refund, what the order shipped goes back on the shelf it left; with ``lines``, their
    shipped units (``services.returns``); in the same transaction either way. ``settles``:
    this partial refund, agreed with the buyer, ends their open request (checked before
    the provider is asked).
    """
    from koudai_flask import payments
    from koudai_flask.payments.offline import OfflineProvider

    with unit_of_work() as session:
        order = order_for(user_id, number, "orders.refund")
        before = _snapshot(order)
        value, left, wanted = refunds.value_of(order, amount, lines, restock=restock)
        if settles and value < left:
            refunds.check_settles(session, order)
        provider_name = order.payments[0].provider
        if provider_name == CHANNEL_PROVIDER:
            raise ValidationError(
                f"order {number} was paid on {order.channel}: refund it there, and this "
                "order follows",
                reason="refund_on_channel",
                detail={"channel": order.channel},
            )
        refund_no = f"{number}-R{secrets.token_hex(4)}"
        provider = payments.enabled().get(provider_name)
        if provider is None and provider_name == "offline":
            # Staff may record an offline payment while the shop offers none at checkout.
            provider = OfflineProvider()
        if provider is None:
            raise ValidationError(
                f"payment provider {provider_name!r} is not configured; refund at the "
                "provider by hand",
                reason="refund_provider_missing",
                detail={"provider": provider_name},
            )
        result = provider.refund(
            number, refund_no=refund_no, amount=value, total=order.paid_amount, reason=reason
        )
        if result.status == "failed":
            raise ValidationError(
                f"{provider_name} refused the refund",
                reason="refund_refused",
                detail={"provider": provider_name},
            )
        actor = f"staff:{user_id}"
        returned = refunds.record(
            order,
            value=value,
            left=left,
            lines=wanted,
            reason=reason,
            refund_no=refund_no,
            actor=actor,
            restock=restock,
            asked=reason or "refund by staff",
            settles=settles,
        )
        session.refresh(order)
        staff.audit(
            actor,
            "orders.refund",
            "order",
            number,
            before,
            {
                **_snapshot(order),
                "amount": value,
                "provider_refund": result.refund_id,
                **({"lines": wanted} if wanted else {}),
                **({"restocked": returned} if restock and not wanted else {}),
            },
        )
        return order


def decline_refund(user_id: str, number: str, *, reason: str) -> Order:
    """Staff keep the sale: the buyer's refund request is declined, with the reason the
    buyer reads on the order (``orders.refund`` permission, like refunding)."""
    with unit_of_work() as session:
        order = order_for(user_id, number, "orders.refund")
        before = _snapshot(order)
        orders.decline_refund(number, reason=reason, actor=f"staff:{user_id}")
        session.refresh(order)
        staff.audit(
            f"staff:{user_id}",
            "orders.decline_refund",
            "order",
            number,
            before,
            {**_snapshot(order), "reason": reason},
        )
        return order


def agree_return(user_id: str, number: str, *, address: dict[str, str] | None = None) -> Order:
    """Staff agree to take back the goods of a return and send the buyer ``address`` (all
    parts empty or None: the shop's return address), with the ``orders.refund`` permission,
    like refunding."""
    with unit_of_work() as session:
        order = order_for(user_id, number, "orders.refund")
        returns.agree(number, actor=f"staff:{user_id}", address=address)
        session.refresh(order)
        staff.audit(
            f"staff:{user_id}",
            "orders.agree_return",
            "order",
            number,
            {"return_address": None},
            {"return_address": returns.return_address(order)},
        )
        return order


def mark_paid_offline(user_id: str, number: str, *, reference: str = "") -> Order:
    """Cash on delivery or a bank transfer arrived: staff record it (provider ``offline``)."""
    reference = (reference or "").strip()[:60]
    with unit_of_work() as session:
        order = order_for(user_id, number, "orders.mark_paid")
        before = _snapshot(order)
        orders.mark_paid(
            number,
            amount=order.total,
            provider="offline",
            transaction_id=f"offline:{reference or number}",
            actor=f"staff:{user_id}",
        )
        session.refresh(order)
        staff.audit(
            f"staff:{user_id}",
            "orders.mark_paid",
            "order",
            number,
            before,
            {**_snapshot(order), "reference": reference},
        )
        return order


def change_address(user_id: str, number: str, address: dict[str, Any]) -> Order:
    """The buyer asked for their unshipped order to go elsewhere (``orders.edit``); see
    ``services.order_address``."""
    with unit_of_work() as session:
        order = order_for(user_id, number, "orders.edit")
        before = dict(order.address or {})
        order_address.change_address(number, address, actor=f"staff:{user_id}")
        session.refresh(order)
        if order.address != before:
            staff.audit(
                f"staff:{user_id}",
                "orders.change_address",
                "order",
                number,
                {"address": before},
                {"address": order.address},
            )
        return order


def add_note(user_id: str, number: str, body: str) -> OrderNote:
    body = (body or "").strip()
    if not 1 <= len(body) <= 2000:
        raise ValidationError("a note is 1 to 2000 characters", reason="note_length")
    with unit_of_work() as session:
        order = order_for(user_id, number, "orders.view")
        note = OrderNote(order_id=order.id, author=f"staff:{user_id}", body=body)
        session.add(note)
        session.flush()
        staff.audit(f"staff:{user_id}", "orders.note", "order", number, None, {"note": body})
        return note


def notes(order: Order) -> list[OrderNote]:
    return list(
        current_session().scalars(
            select(OrderNote).where(OrderNote.order_id == order.id).order_by(OrderNote.id)
        )
    )


# -- customers -------------------------------------------------------------------------------


def _customer_scope(member: StaffMember) -> Any:
    """Customers a scoped member may see: those with an order on one of their channels, or
    known by the identity of a single-account channel in scope (a WeChat follower)."""
    scope = staff.visible_channels(member)
    return None if scope is None else customers_on_channels(scope)


def customers_on_channels(scope: list[str]) -> Any:
    """The WHERE clause of ``_customer_scope`` for the channel names ``scope`` (also used to
    narrow to an API key's channels)."""
    from koudai_flask.models import Channel, CustomerIdentity
    from koudai_flask.services.identities import CHANNEL_OF_KIND

    ordered = exists().where(Order.customer_id == Customer.id, Order.channel.in_(scope))
    kinds_in_scope = set(
        current_session().scalars(select(Channel.kind).where(Channel.name.in_(scope)))
    )
    identity_kinds = [
        kind
        for kind, channel_kind in CHANNEL_OF_KIND.items()
        if channel_kind in ("wechat", "weibo") and channel_kind in kinds_in_scope
    ]
    if not identity_kinds:
        return ordered
    followed = exists().where(
        CustomerIdentity.customer_id == Customer.id, CustomerIdentity.kind.in_(identity_kinds)
    )
    return or_(ordered, followed)


def customer_query(
    member: StaffMember, q: str | None = None, *, rule: str | None = None
) -> Select[Customer]:
    """The customers ``member`` may see, not merged away, matching ``q`` and ``rule``."""
    from koudai_flask.services import tag_rules
    from koudai_flask.services.identities import not_merged_away

    query = select(Customer).where(not_merged_away())
    if rule:
        query = query.where(Customer.id.in_(tag_rules.matching(rule)))
    scope = _customer_scope(member)
    if scope is not None:
        query = query.where(scope)
    if q:
        term = f"%{q.strip().lower()}%"
        query = query.where(
            or_(Customer.name.ilike(term), Customer.phone.ilike(term), Customer.email.ilike(term))
        )
    return query.order_by(Customer.id.desc())


def customer_for(user_id: str, customer_id: int) -> tuple[Customer, list[Order]]:
    """A customer the member may see, with the orders of theirs the member may see."""
    member = staff.require(user_id, "customers.view")
    session = current_session()
    customer = session.scalar(customer_query(member).where(Customer.id == customer_id))
    if customer is None:
        raise NotFound(f"unknown customer {customer_id}")
    rows = session.scalars(
        order_search.order_query(member, order_search.OrderFilters())
        .where(Order.customer_id == customer.id)
        .limit(100)
    ).all()
    return customer, list(rows)
