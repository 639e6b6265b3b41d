"""Property test: random ledger operations keep the ledger equal to a simple model."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from koudai_flask.errors import OutOfStock
from koudai_flask.extension import get_state
from koudai_flask.models import Sku, StockLevel
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, inventory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.services_only

operations = st.lists(
    st.one_of(
        st.tuples(st.just("adjust"), st.integers(-8, 12).filter(bool)),
        st.tuples(st.just("set_on_hand"), st.integers(0, 25)),
        st.tuples(st.just("reserve"), st.integers(1, 6)),
        st.tuples(st.just("release"), st.integers(0, 20)),
        st.tuples(st.just("commit"), st.integers(0, 20)),
        st.tuples(st.just("expire"), st.just(0)),
    ),
    max_size=25,
)

_counter = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, opening=st.integers(0, 15))
def test_random_operations_match_the_model(app, ops, opening):
    code = f"PROP-{next(_counter)}"
    catalog.create_product(title=code, skus=[{"code": code, "price": 100, "stock": opening}])
    on_hand, reserved = opening, 0
    holds: list[tuple[int, int]] = []  # (reservation id, quantity)
    active: set[int] = set()
    for step, (name, value) in enumerate(ops):
        if name == "adjust":
            if on_hand + value >= reserved:
                inventory.adjust(code, value)
                on_hand += value
            else:
                with pytest.raises(OutOfStock):
                    inventory.adjust(code, value)
        elif name == "set_on_hand":
            if value >= reserved:
                inventory.set_on_hand(code, value, source="prop")
                on_hand = value
            else:
                with pytest.raises(OutOfStock):
                    inventory.set_on_hand(code, value, source="prop")
        elif name == "reserve":
            if on_hand - reserved >= value:
                hold = inventory.reserve(code, value, idempotency_key=f"{code}-{step}", ttl=60)
                holds.append((hold.id, value))
                active.add(hold.id)
                reserved += value
            else:
                with pytest.raises(OutOfStock):
                    inventory.reserve(code, value, idempotency_key=f"{code}-{step}")
        elif name in ("release", "commit") and holds:
            hold_id, quantity = holds[value % len(holds)]
            closed = (inventory.release if name == "release" else inventory.commit)(hold_id)
            assert closed == (hold_id in active)
            if closed:
                active.discard(hold_id)
                reserved -= quantity
                if name == "commit":
                    on_hand -= quantity
        elif name == "expire":
            inventory.expire_holds(utcnow() + timedelta(seconds=61))
            reserved -= sum(q for hold_id, q in holds if hold_id in active)
            active.clear()
        assert inventory.available(code) == on_hand - reserved >= 0
    session = get_state(app).session
    session.expire_all()
    level = session.scalar(
        select(StockLevel).join(Sku, Sku.id == StockLevel.sku_id).where(Sku.code == code)
    )
    assert (level.on_hand, level.reserved) == (on_hand, reserved)
    assert_ledger_consistent(session)
