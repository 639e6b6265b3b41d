"""The stock ledger on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from koudai_flask.errors import NotFound, OutOfStock, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import OutboxEvent, Reservation, StockLevel, StockMovement
from koudai_flask.models.base import utcnow
from koudai_flask.services import channels, inventory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.services_only


def _movements(app) -> int:
    return get_state(app).session.scalar(select(func.count()).select_from(StockMovement))


def test_adjust_adds_and_removes_with_a_movement_each(app, shirt):
    before = _movements(app)
    assert inventory.adjust("SHIRT-W", 5, reason="adjustment", source="test").on_hand == 15
    assert inventory.adjust("SHIRT-W", -3, reason="adjustment").on_hand == 12
    assert inventory.available("SHIRT-W") == 12
    assert _movements(app) == before + 2
    assert_ledger_consistent(get_state(app).session)


def test_adjust_below_reserved_raises_and_changes_nothing(app, shirt):
    inventory.reserve("SHIRT-W", 8, idempotency_key="hold-1")
    before = _movements(app)
    with pytest.raises(OutOfStock) as info:
        inventory.adjust("SHIRT-W", -3)
    assert info.value.available == 2
    assert _movements(app) == before
    level = get_state(app).session.scalar(select(StockLevel).where(StockLevel.sku_id == 1))
    get_state(app).session.refresh(level)
    assert (level.on_hand, level.reserved) == (10, 8)


def test_adjust_with_a_used_key_changes_nothing(app, shirt):
    first = inventory.adjust("SHIRT-W", 4, idempotency_key="delivery-77")
    again = inventory.adjust("SHIRT-W", 4, idempotency_key="delivery-77")
    assert first.on_hand == again.on_hand == 14
    assert inventory.available("SHIRT-W") == 14


@pytest.mark.parametrize("delta", [0, 1.5, "3", True])
def test_adjust_refuses_a_bad_delta(app, shirt, delta):
    before = _movements(app)
    with pytest.raises(ValidationError):
        inventory.adjust("SHIRT-W", delta)
    assert _movements(app) == before


def test_unknown_sku_is_not_found_and_writes_nothing(app, shirt):
    before = _movements(app)
    with pytest.raises(NotFound, match="NOPE"):
        inventory.adjust("NOPE", 1)
    with pytest.raises(NotFound):
        inventory.available("NOPE")
    assert _movements(app) == before


def test_set_on_hand_writes_the_difference(app, shirt):
    snapshot = inventory.set_on_hand("SHIRT-B", 4, source="erp:test", idempotency_key="count-1")
    assert snapshot.on_hand == 4
    movement = get_state(app).session.scalar(
        select(StockMovement).where(StockMovement.idempotency_key == "count-1")
    )
    assert (movement.on_hand_delta, movement.reason) == (-6, "count")
    assert (
        inventory.set_on_hand("SHIRT-B", 9, source="erp:test", idempotency_key="count-1").on_hand
        == 4
    )
    assert_ledger_consistent(get_state(app).session)


def test_set_on_hand_below_reserved_is_refused(app, shirt):
    inventory.reserve("SHIRT-B", 6, idempotency_key="hold")
    with pytest.raises(OutOfStock):
        inventory.set_on_hand("SHIRT-B", 5, source="erp:test")
    assert inventory.available("SHIRT-B") == 4


def _ledger_rows(app) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Movements, reservations, and every level as (location id, on hand, reserved)."""
    session = get_state(app).session
    levels = session.execute(
        select(StockLevel.location_id, StockLevel.on_hand, StockLevel.reserved).order_by(
            StockLevel.id
        )
    )
    found = (
        _movements(app),
        session.scalar(select(func.count()).select_from(Reservation)),
        [tuple(row) for row in levels],
    )
    session.rollback()
    return found


@pytest.mark.parametrize("quantity", [0, -2, 1.5, "2", True, None])
def test_reserve_refuses_a_bad_quantity_and_writes_nothing(app, shirt, quantity):
    before = _ledger_rows(app)
    with pytest.raises(ValidationError, match="quantity must be a positive integer"):
        inventory.reserve("SHIRT-W", quantity, idempotency_key="hold")
    assert _ledger_rows(app) == before


def test_bad_ledger_calls_are_refused_and_write_nothing(app, shirt):
    held = inventory.reserve("SHIRT-W", 2, idempotency_key="kept")
    before = _ledger_rows(app)
    with pytest.raises(ValidationError, match="idempotency_key"):
        inventory.reserve("SHIRT-W", 1, idempotency_key="")
    for count in (-1, 2.0, "4", True):
        with pytest.raises(ValidationError, match="integer >= 0"):
            inventory.set_on_hand("SHIRT-W", count, source="erp:test")
    for close in (inventory.release, inventory.commit):
        with pytest.raises(NotFound, match=f"unknown reservation {held.id + 100}"):
            close(held.id + 100)
    with pytest.raises(NotFound, match="unknown stock location 'nowhere'"):
        inventory.adjust("SHIRT-W", 1, location="nowhere")
    assert _ledger_rows(app) == before


def test_a_second_location_keeps_its_own_stock(app, shirt):
    session = get_state(app).session
    default = inventory.get_location(session).id
    session.rollback()
    second = inventory.create_location("hz-west", "Hangzhou west warehouse").id
    with pytest.raises(ValidationError, match="'hz-west' already exists"):
        inventory.create_location("hz-west", "again")
    assert inventory.adjust("SHIRT-W", 6, location="hz-west").on_hand == 6
    hold = inventory.reserve("SHIRT-W", 4, idempotency_key="west-hold", location="hz-west")
    assert inventory.available("SHIRT-W", location="hz-west") == 2
    assert inventory.available("SHIRT-W") == 10
    with pytest.raises(OutOfStock):
        inventory.reserve("SHIRT-W", 3, idempotency_key="too-many", location="hz-west")
    assert inventory.commit(hold.id) is True
    assert (inventory.available("SHIRT-W", location="hz-west"), inventory.available("SHIRT-W")) == (
        2,
        10,
    )
    _, _, levels = _ledger_rows(app)
    assert (second, 2, 0) in levels and (default, 10, 0) in levels
    assert_ledger_consistent(session)


def test_reserve_release_commit(app, shirt):
    hold = inventory.reserve("SHIRT-W", 3, idempotency_key="h1")
    assert inventory.available("SHIRT-W") == 7
    assert inventory.reserve("SHIRT-W", 3, idempotency_key="h1").id == hold.id
    assert inventory.available("SHIRT-W") == 7
    assert inventory.release(hold.id) is True
    assert inventory.release(hold.id) is False
    assert inventory.available("SHIRT-W") == 10
    shipped = inventory.reserve("SHIRT-W", 2, idempotency_key="h2")
    assert inventory.commit(shipped.id) is True
    assert inventory.commit(shipped.id) is False
    level = get_state(app).session.scalar(select(StockLevel).where(StockLevel.sku_id == 1))
    get_state(app).session.refresh(level)
    assert (level.on_hand, level.reserved) == (8, 0)
    assert_ledger_consistent(get_state(app).session)


def test_reserve_more_than_available_raises(app, shirt):
    with pytest.raises(OutOfStock):
        inventory.reserve("SHIRT-W", 11, idempotency_key="big")
    assert inventory.available("SHIRT-W") == 10
    session = get_state(app).session
    assert session.scalar(select(func.count()).select_from(Reservation)) == 0


def test_expired_hold_is_released_exactly_once(app, shirt):
    inventory.reserve("SHIRT-W", 4, idempotency_key="h", ttl=60)
    later = utcnow() + timedelta(seconds=61)
    assert inventory.expire_holds(utcnow()) == 0
    assert inventory.expire_holds(later) == 1
    assert inventory.expire_holds(later) == 0
    assert inventory.available("SHIRT-W") == 10
    assert_ledger_consistent(get_state(app).session)


def test_every_change_writes_an_outbox_event(app, shirt):
    session = get_state(app).session
    before = session.scalar(select(func.count()).select_from(OutboxEvent))
    inventory.adjust("SHIRT-W", 1)
    event = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id.desc())).first()
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == before + 1
    assert event.topic == "stock.changed"
    assert event.payload["sku"] == "SHIRT-W"
    assert event.payload["available"] == 11


@pytest.mark.parametrize(
    ("available", "share", "buffer", "cap", "expected"),
    [
        (100, Decimal("1"), 0, None, 100),
        (100, Decimal("0.29"), 0, None, 29),  # float 0.29*100 floors to 28
        (10, Decimal("0.5"), 3, None, 3),
        (10, Decimal("1"), 12, None, 0),
        (50, Decimal("1"), 0, 20, 20),
        (0, Decimal("1"), 0, 5, 0),
    ],
)
def test_allocation_rule(available, share, buffer, cap, expected):
    assert inventory.allocation(available, share=share, buffer=buffer, cap=cap) == expected


def test_channel_quantity_uses_the_listing_rule(app, shirt):
    channels.create("taobao", "tb-main", settings={})
    channels.link("tb-main", "SHIRT-W", external_item_id="6001", share=0.5, buffer=2, cap=3)
    assert inventory.channel_quantity("SHIRT-W", "tb-main") == 3
    inventory.adjust("SHIRT-W", -6)
    assert inventory.channel_quantity("SHIRT-W", "tb-main") == 1
    with pytest.raises(NotFound):
        inventory.channel_quantity("SHIRT-B", "tb-main")
