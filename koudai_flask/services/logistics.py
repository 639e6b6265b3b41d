"""Logistics tracking: apply Kuaidi100's traces to shipments, subscribe and poll (jobs).

``record_tracking`` is the one place a trace becomes rows: pushes (the callback view) and
polls both go through it, and it is idempotent, so a push replayed fifty times, or twenty
copies arriving at once, store each checkpoint once and deliver the order once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from koudai_flask.config import config_value
from koudai_flask.connectors.errors import ConnectorError
from koudai_flask.connectors.logistics.carriers import CARRIERS
from koudai_flask.connectors.logistics.kuaidi100 import (
    Kuaidi100Client,
    TrackingCheckpoint,
    is_signed,
)
from koudai_flask.errors import InvalidTransition, NotFound
from koudai_flask.models import Order, Shipment, TrackingEvent
from koudai_flask.models.base import utcnow
from koudai_flask.models.orders import OUTBOUND, RETURN, RETURN_ARRIVED
from koudai_flask.services import order_states, orders, returns
from koudai_flask.services.transaction import current_session, unit_of_work, upsert_dialect

log = logging.getLogger("koudai_flask.logistics")

# Kuaidi100 locks a waybill queried more often than about once per 30 minutes (§5).
POLL_EVERY = timedelta(minutes=30)
# Parcels still moving after this long are lost or forgotten: stop spending queries on them.
POLL_WINDOW = timedelta(days=30)
ACTOR = "kuaidi100"


@dataclass(frozen=True)
class TrackingUpdate:
    """What one ``record_tracking`` call changed."""

    shipment_id: int
    new_events: int
    state: str
    shipment_delivered: bool
    order_delivered: bool


def record_tracking(
    carrier: str,
    tracking_number: str,
    *,
    events: Iterable[TrackingCheckpoint],
    state: str,
    source: str,
) -> TrackingUpdate:
    """Store a waybill's checkpoints and state, in one transaction; unknown waybill: NotFound.

    Checkpoints already stored are skipped (``(shipment, time, context)`` is unique and the
    insert ignores conflicts, so concurrent duplicates are safe too). A signed-for state
    marks the shipment delivered and, once every shipment of a shipped order is, the order;
    a buyer's return parcel signed for says so on the order instead (``order.return_arrived``).
    """
    with unit_of_work() as session:
        # Row lock: concurrent traces of one waybill apply one after the other (PostgreSQL).
        shipment = session.scalar(
            select(Shipment)
            .where(Shipment.carrier == carrier, Shipment.tracking_number == tracking_number)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if shipment is None:
            raise NotFound(f"no shipment {carrier} {tracking_number}")
        new_events = _insert_events(session, shipment.id, events)
        signed = is_signed(state)
        shipment_delivered = False
        # A stale push can arrive after the signed one: never move a delivered parcel back.
        if state and (signed or shipment.status != "delivered"):
            shipment.tracking_state = state
        if signed and shipment.status != "delivered":
            shipment.status = "delivered"
            shipment.delivered_at = _signed_at(session, shipment.id) or utcnow()
            shipment_delivered = True
        session.flush()
        order_delivered = False
        if shipment.direction == RETURN:
            if shipment_delivered:
                _return_arrived(session, shipment)
        elif signed:
            order_delivered = _deliver_order(session, shipment.order_id)
        if new_events or shipment_delivered:
            log.info(
                "%s: %s %s got %d new checkpoint(s), state %s",
                source,
                carrier,
                tracking_number,
                new_events,
                state or "-",
            )
        return TrackingUpdate(
            shipment_id=shipment.id,
            new_events=new_events,
            state=state,
            shipment_delivered=shipment_delivered,
            order_delivered=order_delivered,
        )


def _insert_events(session: Session, shipment_id: int, events: Iterable[TrackingCheckpoint]) -> int:
    rows: dict[tuple[datetime, str], dict[str, Any]] = {}
    for event in events:
        context = event.context[:500]
        rows.setdefault(
            (event.occurred_at, context),
            {
                "shipment_id": shipment_id,
                "occurred_at": event.occurred_at,
                "context": context,
                "location": event.location[:120],
                "state": event.state[:8],
                "created_at": utcnow(),
            },
        )
    if not rows:
        return 0
    values = list(rows.values())
    module = upsert_dialect(session)
    if module is not None:
        statement = (
            module.insert(TrackingEvent)
            .values(values)
            .on_conflict_do_nothing(index_elements=["shipment_id", "occurred_at", "context"])
            .returning(TrackingEvent.id)
        )
        return len(session.execute(statement).all())
    # Other databases: one savepoint per row, a duplicate only rolls its own row back.
    inserted = 0
    for row in values:
        try:
            with session.begin_nested():
                session.execute(insert(TrackingEvent).values(row))
            inserted += 1
        except IntegrityError:
            continue
    return inserted


def _signed_at(session: Session, shipment_id: int) -> datetime | None:
    """When the parcel was signed for: its newest checkpoint."""
    return session.scalar(
        select(TrackingEvent.occurred_at)
        .where(TrackingEvent.shipment_id == shipment_id)
        .order_by(TrackingEvent.occurred_at.desc())
        .limit(1)
    )


def _deliver_order(session: Session, order_id: int) -> bool:
    # Locking the order makes pushes for two parcels of one order see each other's result:
    # the second to take the lock finds the first parcel delivered and delivers the order.
    order = session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert order is not None
    if order.status != "shipped":
        return False  # already delivered, or in after-sales: leave the order alone
    pending = session.scalar(
        select(Shipment.id)
        .where(
            Shipment.order_id == order_id,
            Shipment.direction == OUTBOUND,
            Shipment.status != "delivered",
        )
        .limit(1)
    )
    if pending is not None:
        return False
    try:
        orders.deliver(order.number, actor=ACTOR)
    except InvalidTransition:
        return False  # a concurrent trace delivered it first
    return True


def _return_arrived(session: Session, parcel: Shipment) -> None:
    """A return parcel was signed for: a timeline entry and ``order.return_arrived`` (staff
    are told to check the goods and refund), while the order waits on that return."""
    order = session.get(Order, parcel.order_id, with_for_update=True, populate_existing=True)
    assert order is not None
    waybill = returns.return_waybill(order) or {}
    if (waybill.get("carrier"), waybill.get("tracking_number")) != (
        parcel.carrier,
        parcel.tracking_number,
    ):
        return  # the request ended, or another waybill replaced this one
    order_states.record_in_place(
        session,
        order,
        actor=ACTOR,
        note=f"{RETURN_ARRIVED} {parcel.carrier} {parcel.tracking_number}",
        topic="order.return_arrived",
        extra={"carrier": parcel.carrier, "tracking_number": parcel.tracking_number},
    )


# -- jobs ------------------------------------------------------------------------------------


def _client() -> Kuaidi100Client | None:
    settings = config_value("KUAIDI100")
    if settings is None:
        return None
    return Kuaidi100Client(
        settings["customer"],
        settings["key"],
        query_url=settings["query_url"],
        subscribe_url=settings["subscribe_url"],
        timeout=settings["timeout"],
    )


def _phone(shipment: Shipment) -> str | None:
    """The buyer's phone, sent only to carriers that require it (顺丰, 中通; §5). Kuaidi100
    takes the receiver's or the sender's: for a return parcel the buyer is the sender."""
    carrier = CARRIERS.get(shipment.carrier)
    address = shipment.order.address or {}
    if carrier is None or not carrier.needs_phone or not address.get("phone"):
        return None
    return str(address["phone"])


def subscribe_shipment(shipment_id: int) -> str:
    """Job: ask Kuaidi100 to push this shipment's changes to our callback URL.

    Safe twice: a shipment already subscribed is skipped, and Kuaidi100's "duplicate"
    answer (501) counts as subscribed.
    """
    settings = config_value("KUAIDI100")
    client = _client()
    if client is None or settings["callback_url"] is None:
        return "disabled"
    session = current_session()
    shipment = session.get(Shipment, shipment_id)
    if shipment is None:
        return "missing"
    if shipment.subscribed_at is not None or shipment.status == "delivered":
        return "skipped"
    carrier, number, phone = shipment.carrier, shipment.tracking_number, _phone(shipment)
    session.rollback()  # hold no transaction during the HTTP call
    with client:
        outcome = client.subscribe(
            carrier,
            number,
            callback_url=settings["callback_url"],
            salt=settings["salt"],
            phone=phone,
        )
    with unit_of_work() as session:
        session.execute(
            update(Shipment)
            .execution_options(synchronize_session=False)
            .where(Shipment.id == shipment_id, Shipment.subscribed_at.is_(None))
            .values(subscribed_at=utcnow())
        )
    return outcome


def poll_shipment(shipment_id: int) -> str:
    """Job: query this shipment's trace now, unless it was queried in the last 30 minutes.

    The poll slot is claimed with one conditional UPDATE before the request, so two workers
    never both query one waybill inside the window. A failed query is logged, not retried:
    the next ``poll_due`` pass tries again once the window has passed.
    """
    client = _client()
    if client is None:
        return "disabled"
    now = utcnow()
    session = current_session()
    shipment = session.get(Shipment, shipment_id)
    if shipment is None:
        return "missing"
    if shipment.status == "delivered":
        return "delivered"
    carrier, number, phone = shipment.carrier, shipment.tracking_number, _phone(shipment)
    with unit_of_work() as session:
        claimed = session.execute(
            update(Shipment)
            .execution_options(synchronize_session=False)
            .where(Shipment.id == shipment_id, _not_polled_since(now - POLL_EVERY))
            .values(last_polled_at=now)
        ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        return "skipped"
    try:
        with client:
            result = client.query(carrier, number, phone=phone)
    except ConnectorError as exc:
        log.warning("kuaidi100 poll of %s %s failed: %s", carrier, number, exc.message)
        return "failed"
    record_tracking(
        carrier, number, events=result.checkpoints, state=result.state, source="kuaidi100-poll"
    )
    return "polled"


def due_shipments(now: datetime | None = None, limit: int | None = None) -> Sequence[int]:
    """Ids of shipments to poll: not delivered, not polled for 30 min, shipped within 30 days."""
    now = now or utcnow()
    batch = limit if limit is not None else config_value("KUAIDI100")["poll_batch"]
    query = (
        select(Shipment.id)
        .where(
            Shipment.status != "delivered",
            Shipment.created_at >= now - POLL_WINDOW,
            _not_polled_since(now - POLL_EVERY),
        )
        # Never-polled parcels first, then the longest unpolled.
        .order_by(Shipment.last_polled_at.is_not(None), Shipment.last_polled_at, Shipment.id)
        .limit(batch)
    )
    return current_session().scalars(query).all()


def _not_polled_since(cutoff: datetime) -> ColumnElement[bool]:
    return or_(Shipment.last_polled_at.is_(None), Shipment.last_polled_at <= cutoff)


def poll_due() -> int:
    """Periodic job: poll the due shipments, at most ``poll_batch`` per run; returns polls."""
    if config_value("KUAIDI100") is None:
        return 0
    ids = due_shipments()
    current_session().rollback()
    return sum(1 for shipment_id in ids if poll_shipment(shipment_id) == "polled")


def subscribe_on_ship(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler (``order.shipped``, ``order.partially_shipped``, ``order.return_sent``):
    subscribe the order's new waybills, ours and a buyer's return parcel alike."""
    from koudai_flask.jobs.dispatch import enqueue

    settings = config_value("KUAIDI100")
    if settings is None or settings["callback_url"] is None:
        return
    session = current_session()
    ids = session.scalars(
        select(Shipment.id)
        .join(Order, Order.id == Shipment.order_id)
        .where(Order.number == payload["number"], Shipment.subscribed_at.is_(None))
        .order_by(Shipment.id)
    ).all()
    session.rollback()
    for shipment_id in ids:
        enqueue(subscribe_shipment, shipment_id, job_id=f"kuaidi100-subscribe-{shipment_id}")
