"""Packing slips (发货单) and the pick list (拣货单) for the warehouse.

Staff who ship (``orders.ship``) tick paid orders in the order list, or take every paid
order whose slip was never printed, and print: one pick list adding up what to take off the
shelves, then one slip per order to put in its parcel. Only what is still to send is on
them (a partly shipped order lists what is left; a refunded unit is not packed). Each print
is remembered per order (``PackingSlip``: first and last time, by whom, how often), so the
order list can show which orders still need their slip, and audited once per print.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, selectinload

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Channel, Order, OrderLine, PackingSlip
from koudai_flask.models.base import utcnow
from koudai_flask.services import outbox, staff
from koudai_flask.services.api_keys import Principal
from koudai_flask.services.placing import event_payload
from koudai_flask.services.transaction import current_session, unit_of_work, upsert_dialect

# At most this many orders in one print: a day's parcels, not a month's.
MAX_ORDERS = 200
PACKABLE = "paid"


@dataclass(frozen=True)
class SlipLine:
    sku_code: str
    title: str
    variant: str
    quantity: int  # still to send


@dataclass(frozen=True)
class Slip:
    order: Order
    lines: list[SlipLine]
    times: int  # how often this order's slip has been printed, this print included

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True)
class PickLine:
    sku_code: str
    title: str
    variant: str
    quantity: int
    orders: int  # how many of the printed orders want it


@dataclass
class PackingRun:
    """What one print holds, and the ticked orders it left out (number, status or None
    when the member cannot see the order or ship on its channel)."""

    slips: list[Slip] = field(default_factory=list)
    skipped: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def pick_list(self) -> list[PickLine]:
        wanted: dict[str, PickLine] = {}
        for slip in self.slips:
            for line in slip.lines:
                before = wanted.get(line.sku_code)
                wanted[line.sku_code] = PickLine(
                    line.sku_code,
                    line.title,
                    line.variant,
                    line.quantity + (before.quantity if before else 0),
                    1 + (before.orders if before else 0),
                )
        return sorted(wanted.values(), key=lambda line: line.sku_code)


def unprinted() -> ColumnElement[bool]:
    """The SQL condition "this order's packing slip was never printed" (the order list's
    filter and ``print_slips(..., unprinted_only=True)``)."""
    return ~exists().where(PackingSlip.order_id == Order.id)


def print_slips(
    user_id: str, numbers: Iterable[str] | None = None, *, unprinted_only: bool = False
) -> PackingRun:
    """Print the packing slips of ``numbers`` (the ticked orders, in that order), or with
    ``numbers=None`` and ``unprinted_only`` of every paid order the member may ship whose
    slip was never printed, oldest first; at most :data:`MAX_ORDERS`.

    Only paid orders with something left to send are printed; the others are returned in
    ``skipped``. A member who may ship on no channel gets ``PermissionDenied``; nothing to
    print is a ``ValidationError`` (``nothing_to_pack``) and marks nothing."""
    wanted = None if numbers is None else list(dict.fromkeys(n.strip() for n in numbers if n))
    if wanted is not None and len(wanted) > MAX_ORDERS:
        raise ValidationError(
            f"at most {MAX_ORDERS} orders at a time",
            reason="too_many_slips",
            detail={"most": MAX_ORDERS},
        )
    with unit_of_work() as session:
        member = staff.require(user_id, "orders.ship")
        # FOR SHARE: a change of address in flight finishes first, so the slip shows the
        # address the order has; one that comes after sees this print and sends the order
        # back among the unprinted (``order_address``). Prints do not block each other.
        query = (
            select(Order).options(selectinload(Order.lines)).with_for_update(read=True, of=Order)
        )
        scope = staff.visible_channels(member)
        if scope is not None:
            query = query.where(Order.channel.in_(scope))
        if wanted is not None:
            query = query.where(Order.number.in_(wanted))
        else:
            query = query.where(Order.status == PACKABLE)
            if unprinted_only:
                query = query.where(unprinted())
            query = query.order_by(Order.created_at, Order.id).limit(MAX_ORDERS)
        found = {order.number: order for order in session.scalars(query)}
        run = PackingRun()
        for number in wanted if wanted is not None else list(found):
            order = found.get(number)
            if order is None or not staff.allows(member, "orders.ship", channel=order.channel):
                run.skipped.append((number, None))
                continue
            lines = [_slip_line(line) for line in order.lines if line.to_ship > 0]
            if order.status != PACKABLE or not lines:
                run.skipped.append((number, order.status))
                continue
            times = _mark(session, order, member.user_id)
            run.slips.append(Slip(order, lines, times))
            # A warehouse or ERP system subscribed to it learns that packing began.
            outbox.record(
                session,
                "order.slip_printed",
                {
                    **event_payload(order, order.status),
                    "times": times,
                    "printed_by": member.user_id,
                },
            )
        if not run.slips:
            raise ValidationError(
                "none of these orders is paid with something left to send",
                reason="nothing_to_pack",
            )
        staff.audit(
            f"staff:{member.user_id}",
            "orders.slips_printed",
            "order",
            run.slips[0].order.number,
            None,
            {"orders": [slip.order.number for slip in run.slips]},
        )
    return run


def record_print(who: Principal, number: str) -> Slip:
    """The API's "this order's slip was printed" (an outside printing system): the key must
    see the order and ship on its channel; the print counts as one from the back office."""
    from koudai_flask.services.platform_reads import order

    order(who, number, "orders.ship")  # NotFound outside the key's channels
    return print_slips(who.user_id, [number]).slips[0]


def _slip_line(line: OrderLine) -> SlipLine:
    return SlipLine(line.sku_code, line.title, line.variant, line.to_ship)


def _mark(session: Session, order: Order, user_id: str) -> int:
    """Remember this print of ``order``'s slip; returns how often it has been printed.

    One upsert on PostgreSQL and SQLite: two members printing the same order at once both
    count, and neither fails on the row the other just made."""
    now = utcnow()
    module = upsert_dialect(session)
    if module is not None:
        statement = module.insert(PackingSlip).values(
            order_id=order.id, first_printed_at=now, last_printed_at=now, printed_by=user_id
        )
        times = session.scalar(
            statement.on_conflict_do_update(
                index_elements=[PackingSlip.order_id],
                set_={
                    "times": PackingSlip.times + 1,
                    "last_printed_at": now,
                    "printed_by": user_id,
                },
            ).returning(PackingSlip.times)
        )
        return int(times or 1)
    slip = session.get(PackingSlip, order.id, with_for_update=True)
    if slip is None:
        slip = PackingSlip(
            order_id=order.id, first_printed_at=now, last_printed_at=now, printed_by=user_id
        )
        session.add(slip)
        return 1
    slip.times += 1
    slip.last_printed_at = now
    slip.printed_by = user_id
    return slip.times


def printed(order_ids: Iterable[int]) -> dict[int, PackingSlip]:
    """The print records of these orders (for the order list's 已打印 mark)."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = current_session().scalars(select(PackingSlip).where(PackingSlip.order_id.in_(ids)))
    return {row.order_id: row for row in rows}


# -- scan to ship ----------------------------------------------------------------------------

MAX_SCANNED = 64  # characters of a scan: an order number, a waybill, a channel's order id


class ScanAmbiguous(ValidationError):
    """A channel's order id that orders of two or more channels carry: the scan names no
    one order, and the page offers ``numbers``, ours, to choose from."""

    def __init__(self, scanned: str, numbers: list[str]) -> None:
        super().__init__(
            f"orders {', '.join(numbers)} all carry the channel order id {scanned!r}",
            reason="scan_ambiguous",
            detail={"id": scanned, "count": len(numbers)},
        )
        self.numbers = numbers


def scanned_order(user_id: str, scanned: str) -> Order:
    """The order a scan at the packing table names, for ``orders.ship``: our order number
    (our slip's barcode), else a channel's own order id (``external_id``: the 订单号 on a
    slip printed from the marketplace's tools) among the channels the member works on.
    Unknown or out of their scope is NotFound; an id on orders of two channels is
    ``ScanAmbiguous``."""
    # backoffice imports order_search, which imports this module.
    from koudai_flask.services.backoffice import order_for

    scanned = scanned.strip()[:MAX_SCANNED]
    try:
        return order_for(user_id, scanned, "orders.ship")
    except NotFound:
        pass
    session = current_session()
    scope = staff.visible_channels(staff.get_member(user_id))
    if scope is None:  # every channel, named, so that (channel, external_id)'s index serves
        scope = list(session.scalars(select(Channel.name)))
    numbers = sorted(
        session.scalars(
            select(Order.number)
            .where(Order.channel.in_(scope), Order.external_id == scanned)
            .limit(10)
        )
    )
    if len(numbers) > 1:
        raise ScanAmbiguous(scanned, numbers)
    if not numbers:
        raise NotFound(
            f"unknown order {scanned!r}", reason="unknown_order", detail={"number": scanned}
        )
    return order_for(user_id, numbers[0], "orders.ship")


__all__ = [
    "MAX_ORDERS",
    "MAX_SCANNED",
    "PackingRun",
    "PickLine",
    "ScanAmbiguous",
    "Slip",
    "SlipLine",
    "print_slips",
    "printed",
    "scanned_order",
    "unprinted",
]
