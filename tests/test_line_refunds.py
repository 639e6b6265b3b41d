"""Refunding some of an order's units: the ones not shipped leave the order and their stock
goes back; shipped ones come back to the shelf when the seller says the parcel came back."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Order, Sku, StockLevel
from koudai_flask.services import inventory, order_states, orders, theme
from koudai_flask.services.shipping import remaining
from tests.helpers import assert_ledger_consistent
from tests.test_admin import build, login
from tests.test_orders import world

W, B = 12900, 13900  # the shirt's prices (tests/conftest.py)


RETURN_TO = {"name": "售后组", "phone": "0571-88886666", "address": "杭州市文三路 90 号"}


def paid(lines: dict[str, int], shipping_fee: int = 0) -> str:
    order = orders.place(
        channel="web",
        lines=[{"sku": code, "quantity": units} for code, units in lines.items()],
        shipping_fee=shipping_fee,
    )
    orders.mark_paid(
        order.number, amount=order.total, transaction_id=f"t-{order.number}", provider="test"
    )
    return order.number


def fresh(number: str) -> Order:
    session = get_state().session
    session.expire_all()
    order = session.scalar(select(Order).where(Order.number == number))
    assert order is not None
    return order


def on_hand(code: str) -> int:
    return get_state().session.scalar(
        select(func.sum(StockLevel.on_hand))
        .join(Sku, Sku.id == StockLevel.sku_id)
        .where(Sku.code == code)
    )


def test_a_line_refunded_before_shipping_leaves_the_order_and_its_stock_goes_back(app, shirt):
    number = paid({"SHIRT-W": 1, "SHIRT-B": 2})
    assert inventory.available("SHIRT-B") == 8

    order = orders.refund(number, lines={"SHIRT-B": 1}, reason="changed mind", actor="staff:1")
    assert order.status == "paid"
    order = fresh(number)
    assert order.refunded_amount == B
    assert inventory.available("SHIRT-B") == 9 and on_hand("SHIRT-B") == 10
    assert remaining(order) == {"SHIRT-W": 1, "SHIRT-B": 1}

    orders.ship(number, carrier="shunfeng", tracking_number="SF500001")
    order = fresh(number)
    assert order.status == "shipped"  # what was refunded is not waited for
    assert on_hand("SHIRT-B") == 9 and on_hand("SHIRT-W") == 9
    assert_ledger_consistent(get_state().session)


def test_refunding_the_last_units_to_ship_counts_the_order_shipped(app, shirt):
    number = paid({"SHIRT-W": 1, "SHIRT-B": 1})
    orders.ship(number, carrier="shunfeng", tracking_number="SF500002", lines={"SHIRT-W": 1})
    assert fresh(number).status == "paid"
    orders.refund(number, lines={"SHIRT-B": 1}, reason="out of stock at the warehouse")
    order = fresh(number)
    assert order.status == "shipped" and order.refunded_amount == B
    assert inventory.available("SHIRT-B") == 10
    assert order.events[-1].note == "the rest was refunded"
    assert [event.step for event in order.events] == [
        "pending_payment",
        "paid",
        "partially_shipped",
        "partially_refunded",
        "shipped",
    ]


def test_every_unit_not_shipped_is_a_full_refund(app, shirt):
    number = paid({"SHIRT-W": 2}, shipping_fee=1000)
    before = world(app)
    with pytest.raises(ValidationError) as everything:
        orders.refund(number, amount=W, lines={"SHIRT-W": 2})  # the shipping fee kept back
    assert everything.value.reason == "refund_everything"
    assert world(app) == before

    orders.request_refund(number, reason="all of it")
    orders.refund(number, lines={"SHIRT-W": 2})
    order = fresh(number)
    assert order.status == "refunded" and order.refunded_amount == 2 * W + 1000
    assert [line.refunded_quantity for line in order.lines] == [2]
    assert inventory.available("SHIRT-W") == 10


def test_returned_units_go_back_on_the_shelf_once(app, shirt):
    number = paid({"SHIRT-W": 2})
    orders.ship(number, carrier="shunfeng", tracking_number="SF500003")
    assert on_hand("SHIRT-W") == 8

    orders.refund(number, lines={"SHIRT-W": 1}, restock=True, idempotency_key="ret-1")
    orders.refund(number, lines={"SHIRT-W": 1}, restock=True, idempotency_key="ret-1")  # replay
    order = fresh(number)
    assert (order.status, order.refunded_amount, on_hand("SHIRT-W")) == ("shipped", W, 9)

    # The rest, refunded in full with the parcel back: only the unit not back yet is added.
    from koudai_flask.services import returns

    orders.request_refund(number, reason="the other one too")
    orders.refund(number, idempotency_key="ret-2")
    assert returns.restock_shipped(fresh(number), "ret-2") == {"SHIRT-W": 1}
    assert on_hand("SHIRT-W") == 10
    assert_ledger_consistent(get_state().session)


def test_shipped_units_refunded_without_the_parcel_stay_out(app, shirt):
    number = paid({"SHIRT-W": 2})
    orders.ship(number, carrier="shunfeng", tracking_number="SF500004")
    orders.refund(number, lines={"SHIRT-W": 1})
    assert on_hand("SHIRT-W") == 8 and fresh(number).refunded_amount == W


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ({"NOPE": 1}, "refund_unknown_line"),
        ({"SHIRT-W": 3}, "refund_too_many_units"),
        ({"SHIRT-W": -1}, "refund_quantity"),
        ({"SHIRT-W": "1"}, "refund_quantity"),
        ({"SHIRT-W": 0}, "refund_no_lines"),
    ],
)
def test_bad_lines_are_refused_and_change_nothing(app, shirt, lines: Any, reason: str):
    number = paid({"SHIRT-W": 2, "SHIRT-B": 1})
    before = world(app)
    with pytest.raises(ValidationError) as refused:
        orders.refund(number, lines=lines)
    assert refused.value.reason == reason
    assert world(app) == before


def test_units_refunded_twice_are_refused(app, shirt):
    number = paid({"SHIRT-W": 2, "SHIRT-B": 1})
    orders.refund(number, lines={"SHIRT-W": 2})
    with pytest.raises(ValidationError) as refused:
        orders.refund(number, lines={"SHIRT-W": 1})
    assert refused.value.reason == "refund_too_many_units"
    assert fresh(number).refunded_amount == 2 * W


# -- the back office and the API --------------------------------------------------------------


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, dict[str, str]]:
    return build(make_app, database_url)


def test_staff_refund_one_item_of_an_order_from_its_page(shop):
    app, _ = shop
    with app.app_context():
        order = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 3}])
        orders.mark_paid(order.number, amount=order.total, transaction_id="x-3", provider="offline")
        number = order.number
    owner = login(app, "owner")
    page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="refund-lines"' in page and 'name="refund-KET"' in page and "只退部分商品" in page

    too_many = owner.post(
        f"/shop-admin/orders/{number}/refund",
        data={"csrf_token": owner.csrf, "refund-KET": "4"},
        follow_redirects=True,
    )
    assert "KET：最多只能退 3 件。" in too_many.get_data(as_text=True)
    done = owner.post(
        f"/shop-admin/orders/{number}/refund",
        data={"csrf_token": owner.csrf, "refund-KET": "1", "reason": "one was cracked"},
    )
    assert done.status_code == 303
    with app.app_context():
        order = fresh(number)
        assert (order.status, order.refunded_amount) == ("paid", 9900)
        assert remaining(order) == {"KET": 2}
        audit = (
            get_state()
            .session.scalars(select(AuditEntry).where(AuditEntry.action == "orders.refund"))
            .one()
        )
        assert audit.after["lines"] == {"KET": 1}
    page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'max="2"' in page  # what is left to refund


def test_the_api_refunds_units_and_says_so_on_each_line(shop):
    from tests.api_support import API, make_key

    app, _ = shop
    with app.app_context():
        number = orders.place(
            channel="tb-a",
            lines=[{"sku": "KET", "quantity": 2, "unit_price": 9900}],
            external_id="T-lines",
        ).number
        orders.mark_paid(number, amount=19800, transaction_id="tb-lines", provider="api:tb-a")
        held = inventory.available("KET")
    headers = make_key(app, ["orders.refund"], owner="staff:owner@shop.cn")
    client = app.test_client()
    bad = client.post(f"{API}/orders/{number}/refunds", json={"lines": {"KET": 0}}, headers=headers)
    assert bad.status_code == 422
    answer = client.post(
        f"{API}/orders/{number}/refunds", json={"lines": {"KET": 1}}, headers=headers
    )
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["status"] == "paid" and body["lines"][0]["refunded_quantity"] == 1
    with app.app_context():
        assert inventory.available("KET") == held + 1  # the unit not shipped is back


def test_a_request_declined_after_the_rest_was_refunded_leaves_the_order_shipped(app, shirt):
    number = paid({"SHIRT-W": 1, "SHIRT-B": 1})
    orders.ship(number, carrier="shunfeng", tracking_number="SF500005", lines={"SHIRT-W": 1})
    orders.request_refund(number, reason="the blue one never came", actor="buyer")
    orders.refund(number, lines={"SHIRT-B": 1}, actor="staff:1")
    assert fresh(number).status == "refunding"  # the request still waits for an answer
    orders.decline_refund(number, reason="the white one stays sold", actor="staff:1")
    order = fresh(number)
    assert order.status == "shipped"  # not paid with nothing left to send
    assert [event.to_status for event in order.events][-2:] == ["paid", "shipped"]
    with pytest.raises(InvalidTransition):
        orders.ship(number, carrier="shunfeng", tracking_number="SF500006")


def test_refunding_the_items_a_request_named_settles_it(app, shirt):
    number = paid({"SHIRT-W": 2, "SHIRT-B": 1})
    orders.ship(number, carrier="shunfeng", tracking_number="SF500007")
    orders.request_refund(
        number, reason="one cracked", actor="buyer", lines={"SHIRT-W": 1}, returning=True
    )
    orders.refund(number, amount=5000, actor="staff:1")  # money alone: the request stands
    assert fresh(number).status == "refunding"
    orders.refund(number, lines={"SHIRT-W": 1}, restock=True, actor="staff:1")
    order = fresh(number)
    assert order.status == "shipped"
    assert order.events[-1].note == "the items asked for were refunded"
    assert order_states.last_declined(order.events) is None  # settled, not declined
    assert on_hand("SHIRT-W") == 9  # the returned one is back


def test_a_request_for_the_whole_order_is_not_settled_by_a_part(app, shirt):
    number = paid({"SHIRT-W": 2})
    orders.request_refund(number, reason="changed mind", actor="buyer")
    orders.refund(number, lines={"SHIRT-W": 1}, actor="staff:1")
    assert fresh(number).status == "refunding"  # staff refund the rest, or decline it


def test_the_api_shows_what_a_refunding_order_waits_on(shop):
    from koudai_flask.services import returns
    from tests.api_support import API, make_key

    app, numbers = shop
    number = numbers["web"]
    headers = make_key(app, ["orders.view"], owner="staff:owner@shop.cn")
    client = app.test_client()
    assert (
        client.get(f"{API}/orders/{number}", headers=headers).get_json()["refund_request"] is None
    )
    with app.app_context():
        orders.ship(number, carrier="shunfeng", tracking_number="SF900001")
        orders.request_refund(
            number, reason="破损", actor="buyer", lines={"KET": 1}, returning=True
        )
    refunds = make_key(app, ["orders.refund"], owner="staff:owner@shop.cn")
    agree = f"{API}/orders/{number}/refund-request/agree-return"
    refused = client.post(agree, headers=refunds)  # the shop has no return address yet
    assert (refused.status_code, refused.get_json()["reason"]) == (422, "no_return_address")
    with app.app_context():
        theme.update(return_address=RETURN_TO)
    agreed = client.post(agree, headers=refunds)
    assert agreed.status_code == 200
    assert agreed.get_json()["refund_request"]["return_address"] == RETURN_TO
    with app.app_context():
        returns.send_back(number, carrier="yuantong", tracking_number="YT900002")
    asked = client.get(f"{API}/orders/{number}", headers=headers).get_json()["refund_request"]
    assert asked.pop("return_agreed_at") >= asked["asked_at"]
    assert {k: v for k, v in asked.items() if k != "asked_at"} == {
        "actor": "buyer",
        "reason": "破损",
        "lines": {"KET": 1},
        "returning": True,
        "return_address": RETURN_TO,
        "return_waybill": {
            "carrier": "yuantong",
            "tracking_number": "YT900002",
            "status": "shipped",
            "delivered_at": None,
        },
    }
    empty = client.post(f"{API}/orders/{number}/refunds", json={"lines": {}}, headers=refunds)
    assert empty.status_code == 422
