"""Changing an unshipped order's address (修改收货地址): by the service, from the order page by
staff who may and through the REST API; refused with nothing written once something has
shipped, for an order a marketplace or an ERP keeps, and for an address the schema refuses;
on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Order, OrderEvent, OutboxEvent, PackingSlip
from koudai_flask.services import channels, customers, order_address, order_sync, orders, packing
from koudai_flask.services.webhooks import TOPIC_EVENTS
from tests.api_support import API, make_key
from tests.crm_support import race
from tests.shop_client import ShopClient
from tests.test_admin import build, login

OLD = {
    "name": "Buyer web",
    "phone": "13800138000",
    "province": "",
    "city": "",
    "district": "",
    "street": "1 Road",
    "postcode": "",
}
NEW = {
    "name": "王芳",
    "phone": "13700137000",
    "province": "浙江省",
    "city": "杭州市",
    "district": "西湖区",
    "street": "文二路 9 号",
    "postcode": "310012",
}


def written(app: Flask, number: str) -> dict[str, Any]:
    """What a refused change must leave as it was: the address, the timeline, the events."""
    with app.app_context():
        session = get_state().session
        order = session.scalar(select(Order).where(Order.number == number))
        return {
            "address": order.address,
            "events": session.scalar(
                select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == order.id)
            ),
            "outbox": session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.topic == order_address.TOPIC)
            ),
            "audit": session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "orders.change_address")
            ),
        }


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, dict[str, str]]:
    return build(make_app, database_url)


def test_a_paid_order_goes_to_the_new_address_with_its_old_one_on_the_timeline(shop):
    app, numbers = shop
    number = numbers["web"]
    with app.app_context():
        order = order_address.change_address(number, NEW, actor="staff:service")
        assert order.address == NEW and order.status == "paid"
        event = order.events[-1]
        assert (event.step, event.actor) == ("address_changed", "staff:service")
        assert event.detail == {"previous_address": OLD, "slips_printed": 0}
        sent = (
            get_state()
            .session.scalars(select(OutboxEvent).where(OutboxEvent.topic == order_address.TOPIC))
            .all()
        )
        assert [e.payload["number"] for e in sent] == [number]
        assert sent[0].payload["address"] == NEW
        assert sent[0].payload["previous_address"] == OLD
        assert sent[0].payload["slip_reprint"] is False
        # Receivers of webhooks know it by a public name.
        assert TOPIC_EVENTS[order_address.TOPIC] == "order.address_changed"
    before = written(app, number)
    with app.app_context():  # the same address again: nothing more is written
        order_address.change_address(number, dict(NEW), actor="staff:service")
    assert written(app, number) == before


def test_an_unpaid_order_without_an_address_gets_one_and_keeps_its_price(shop):
    app, numbers = shop
    with app.app_context():
        total = orders.get_order(get_state().session, numbers["pending"]).total
        order = order_address.change_address(numbers["pending"], NEW)
        assert order.address == NEW and order.status == "pending_payment"
        assert order.total == total
        assert order.events[-1].detail["previous_address"] == {}


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ({**NEW, "phone": "call me"}, "phone"),
        ({**NEW, "street": ""}, "street"),
        ({key: value for key, value in NEW.items() if key != "name"}, "name"),
        ({**NEW, "city": "杭" * 41}, "city"),
        ({**NEW, "floor": "3"}, "floor"),
    ],
)
def test_an_address_the_schema_refuses_changes_nothing(shop, address, field):
    app, numbers = shop
    before = written(app, numbers["web"])
    with app.app_context(), pytest.raises(ValidationError) as refused:
        order_address.change_address(numbers["web"], address)
    assert field in refused.value.messages
    assert written(app, numbers["web"]) == before


def test_once_something_has_shipped_the_address_stays(shop):
    app, numbers = shop
    with app.app_context():
        orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}])  # keep stock moving
        two = orders.place(
            channel="web", lines=[{"sku": "KET", "quantity": 2}], address=OLD, actor="buyer"
        )
        orders.mark_paid(two.number, amount=two.total, transaction_id="x-two", provider="offline")
        orders.ship(two.number, carrier="shunfeng", tracking_number="SF1001", lines={"KET": 1})
        partly = two.number
        orders.ship(numbers["web"], carrier="shunfeng", tracking_number="SF1002")
        orders.cancel(numbers["pending"], reason="asked")
    for number, error, reason in (
        (partly, ValidationError, "address_shipped"),
        (numbers["web"], InvalidTransition, None),
        (numbers["pending"], InvalidTransition, None),
    ):
        before = written(app, number)
        with app.app_context(), pytest.raises(error) as refused:
            order_address.change_address(number, NEW)
        assert getattr(refused.value, "reason", None) == reason
        assert written(app, number) == before


def test_a_refund_request_holds_the_address(shop):
    app, numbers = shop
    with app.app_context():
        orders.request_refund(numbers["web"], reason="wrong size")
    before = written(app, numbers["web"])
    with app.app_context(), pytest.raises(InvalidTransition, match="refunding"):
        order_address.change_address(numbers["web"], NEW)
    assert written(app, numbers["web"]) == before


def test_an_order_a_marketplace_or_an_erp_keeps_is_changed_there(shop):
    app, numbers = shop
    with app.app_context():
        channels.create("erp", "jst", settings={})
        order_sync.record_export("jst", numbers["web"], "JST-1")
        order_sync.record_sold_there("tb-a", numbers["tb-a"], "T-tb-a")
    for number, reason, channel in (
        (numbers["web"], "address_in_erp", "jst"),
        (numbers["tb-a"], "address_on_channel", "tb-a"),
    ):
        before = written(app, number)
        with app.app_context():
            assert not order_address.changeable(orders.get_order(get_state().session, number))
            with pytest.raises(ValidationError) as refused:
                order_address.change_address(number, NEW)
        assert (refused.value.reason, refused.value.detail) == (reason, {"channel": channel})
        assert written(app, number) == before


def test_a_printed_slip_is_printed_again_with_the_new_address(shop):
    app, numbers = shop
    number = numbers["web"]
    with app.app_context():
        packing.print_slips("staff:warehouse@shop.cn", [number])
        packing.print_slips("staff:warehouse@shop.cn", [number])
        order = order_address.change_address(number, NEW)
        session = get_state().session
        assert session.get(PackingSlip, order.id) is None
        assert order.events[-1].detail["slips_printed"] == 2
        event = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == order_address.TOPIC)
        ).one()
        assert event.payload["slip_reprint"] is True
        # The warehouse's "print what is not printed" takes it again, with the new street.
        run = packing.print_slips("staff:warehouse@shop.cn", unprinted_only=True)
        reprinted = [slip.order for slip in run.slips if slip.order.number == number]
        assert [o.address["street"] for o in reprinted] == [NEW["street"]]


def test_a_print_waits_for_a_change_in_flight_and_shows_the_new_address(make_app, postgres_url):
    """The buyer's change holds the order row; the warehouse's print of that order waits for
    it (the print takes its orders FOR SHARE) and then prints where the order now goes."""
    app, numbers = build(make_app, postgres_url)
    number = numbers["web"]
    run = race(
        app,
        lambda: order_address.change_address(number, NEW, actor="buyer", by_buyer=True),
        lambda: packing.print_slips("staff:warehouse@shop.cn", [number]),
        "koudai_order",
        waiting="%FROM koudai_order %FOR SHARE%",
    )
    assert isinstance(run, packing.PackingRun)
    assert [slip.order.address["street"] for slip in run.slips] == [NEW["street"]]
    assert written(app, number)["address"] == NEW


def test_a_buyers_change_that_meets_a_print_is_refused_and_staffs_sends_it_back(
    make_app, postgres_url
):
    """A print holds the order row; a change of address waits for it, then sees the slip:
    the buyer is refused with nothing written (packing began), the shop's change goes
    through and sends the order back among the unprinted."""
    app, numbers = build(make_app, postgres_url)
    number = numbers["web"]
    before = written(app, number)
    refused = race(
        app,
        lambda: packing.print_slips("staff:warehouse@shop.cn", [number]),
        lambda: order_address.change_address(number, NEW, actor="buyer", by_buyer=True),
        "koudai_order",
        waiting="%UPDATE koudai_order %",
    )
    assert isinstance(refused, ValidationError) and refused.reason == "address_packing"
    assert written(app, number) == before
    changed = race(
        app,
        lambda: packing.print_slips("staff:warehouse@shop.cn", [number]),
        lambda: order_address.change_address(number, NEW, actor="staff:service@shop.cn"),
        "koudai_order",
        waiting="%UPDATE koudai_order %",
    )
    assert isinstance(changed, Order) and written(app, number)["address"] == NEW
    with app.app_context():
        order = orders.get_order(get_state().session, number)
        assert get_state().session.get(PackingSlip, order.id) is None
        assert order.events[-1].detail["slips_printed"] == 2


def test_service_staff_change_it_from_the_order_page_and_it_is_audited(shop):
    app, numbers = shop
    number = numbers["web"]
    client = login(app, "customer_service")
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="change-address-link"' in page
    form_page = client.get(f"/shop-admin/orders/{number}/address").get_data(as_text=True)
    assert 'value="1 Road"' in form_page and "修改订单" in form_page
    response = client.post(
        f"/shop-admin/orders/{number}/address", data={"csrf_token": client.csrf, **NEW}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/orders/{number}")
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert "收货地址已修改。" in page and "文二路 9 号" in page
    with app.app_context():
        entry = get_state().session.scalar(
            select(AuditEntry).where(AuditEntry.action == "orders.change_address")
        )
        assert entry.actor == "staff:staff:customer_service@shop.cn"
        assert entry.before == {"address": OLD} and entry.after == {"address": NEW}


def test_the_order_page_refuses_a_bad_address_field_by_field_and_a_forged_post(shop):
    app, numbers = shop
    number = numbers["web"]
    client = login(app, "customer_service")
    before = written(app, number)
    refused = client.post(
        f"/shop-admin/orders/{number}/address",
        data={"csrf_token": client.csrf, **NEW, "phone": "call me"},
    )
    assert refused.status_code == 422
    assert 'data-error="phone"' in refused.get_data(as_text=True)
    assert client.post(f"/shop-admin/orders/{number}/address", data=NEW).status_code == 400
    assert written(app, number) == before


def test_who_may_not_or_when_it_may_not_change_is_not_offered_it(shop):
    app, numbers = shop
    number = numbers["web"]
    warehouse = login(app, "warehouse")  # ships, but does not edit orders
    assert 'id="change-address-link"' not in warehouse.get(f"/shop-admin/orders/{number}").get_data(
        as_text=True
    )
    assert warehouse.get(f"/shop-admin/orders/{number}/address").status_code == 403
    assert (
        warehouse.post(
            f"/shop-admin/orders/{number}/address", data={"csrf_token": warehouse.csrf, **NEW}
        ).status_code
        == 403
    )
    agent = login(app, "agent")  # customer service for tb-a only: the web order is not theirs
    assert agent.get(f"/shop-admin/orders/{number}/address").status_code == 404
    with app.app_context():
        orders.ship(number, carrier="shunfeng", tracking_number="SF2001")
    service = login(app, "customer_service")
    page = service.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="change-address-link"' not in page
    sent_back = service.get(f"/shop-admin/orders/{number}/address", follow_redirects=True)
    assert "此订单的收货地址已不能在这里修改。" in sent_back.get_data(as_text=True)
    refused = service.post(
        f"/shop-admin/orders/{number}/address",
        data={"csrf_token": service.csrf, **NEW},
        follow_redirects=True,
    )
    assert f"订单 {number} 当前为「已发货」，不能改寄其他地址。" in refused.get_data(as_text=True)
    assert written(app, number)["address"] == OLD


def test_the_api_changes_it_and_says_why_it_will_not(shop):
    app, numbers = shop
    with app.app_context():
        from koudai_flask.services import staff

        staff.grant("staff:owner@shop.cn", "owner")
    headers = make_key(app, ["orders.view", "orders.edit"], owner="staff:owner@shop.cn")
    client = app.test_client()
    url = f"{API}/orders/{numbers['web']}/address"
    changed = client.put(url, json=NEW, headers=headers)
    assert changed.status_code == 200 and changed.get_json()["address"] == NEW
    bad = client.put(url, json={**NEW, "phone": "x"}, headers=headers)
    assert bad.status_code == 422 and "phone" in bad.get_json()["errors"]
    with app.app_context():
        orders.ship(numbers["web"], carrier="shunfeng", tracking_number="SF3001")
    late = client.put(url, json={**NEW, "street": "别处 1 号"}, headers=headers)
    assert late.status_code == 409 and late.get_json()["code"] == "InvalidTransition"
    assert written(app, numbers["web"])["address"] == NEW


# -- the buyer ---------------------------------------------------------------------------------


def buyer_of(app: Flask, name: str) -> ShopClient:
    client = ShopClient(app)
    client.get("/account/login")
    client.post("/account/login", {"login": f"{name}@buyers.cn", "password": "buyer-pass-1"})
    return client


def test_the_buyer_sends_their_paid_order_elsewhere_until_packing_begins(shop):
    app, numbers = shop
    number = numbers["web"]
    buyer = buyer_of(app, "web")
    assert 'id="change-address"' in buyer.text(f"/orders/{number}")
    assert 'value="1 Road"' in buyer.text(f"/orders/{number}/address")
    changed = buyer.post(f"/orders/{number}/address", NEW)
    assert changed.status_code == 303 and changed.headers["Location"].endswith(number)
    assert "订单将寄往新地址。" in buyer.text(f"/orders/{number}")
    assert written(app, number)["address"] == NEW
    with app.app_context():
        order = orders.get_order(get_state().session, number)
        assert (order.events[-1].step, order.events[-1].actor) == ("address_changed", "buyer")
        customer = customers.find_by_login("web@buyers.cn")
        home = customers.add_address(customer.id, **{**NEW, "street": "龙井路 2 号"})
        other = customers.find_by_login("tb-a@buyers.cn")
        theirs = customers.add_address(other.id, **{**NEW, "street": "别人家 3 号"})
        home_id, their_id = home.id, theirs.id
    # One of their saved addresses, by its id; another buyer's is 404.
    assert buyer.post(f"/orders/{number}/address", {"address_id": their_id}).status_code == 404
    assert buyer.post(f"/orders/{number}/address", {"address_id": home_id}).status_code == 303
    assert written(app, number)["address"]["street"] == "龙井路 2 号"
    # Packing begins: the buyer asks the shop from now on.
    with app.app_context():
        packing.print_slips("staff:warehouse@shop.cn", [number])
    assert 'id="change-address"' not in buyer.text(f"/orders/{number}")
    before = written(app, number)
    refused = buyer.post(f"/orders/{number}/address", NEW, follow_redirects=True)
    assert "商家正在为此订单打包：请联系商家修改收货地址。" in refused.get_data(as_text=True)
    assert written(app, number) == before


def test_the_buyer_cannot_change_anothers_a_marketplaces_or_by_a_forged_post(shop):
    app, numbers = shop
    number = numbers["web"]
    stranger = buyer_of(app, "tb-b")
    assert stranger.get(f"/orders/{number}/address").status_code == 404
    assert stranger.post(f"/orders/{number}/address", NEW).status_code == 404
    marketplace = buyer_of(app, "tb-a")  # their own order, but Taobao's
    assert marketplace.get(f"/orders/{numbers['tb-a']}/address").status_code == 404
    buyer = buyer_of(app, "web")
    before = written(app, number)
    assert buyer.post(f"/orders/{number}/address", NEW, token=False).status_code == 400
    bad = buyer.post(f"/orders/{number}/address", {**NEW, "phone": "call me"})
    assert bad.status_code == 422 and 'data-error="phone"' in bad.get_data(as_text=True)
    assert written(app, number) == before
    page = buyer.get(f"/orders/{number}/address")
    assert page.headers["Cache-Control"] == "private, no-store"


def test_the_buyer_is_told_each_change_the_shop_makes_but_not_their_own(shop):
    from koudai_flask.notifications import sms

    app, numbers = shop
    app.config["KOUDAI_SMS"] = {"provider": "log"}
    number = numbers["web"]
    with app.app_context():
        order_address.change_address(number, NEW, actor="staff:service")
        [told] = sms.get_provider().sent
        # The buyer has no phone of their own: the one they placed the order with is told,
        # not whoever the parcel goes to now.
        assert told.phone == OLD["phone"]
        assert told.text.startswith(
            f"【Koudai Shop】您的订单{number}的收货地址已改为：王芳 13700137000 "
            "浙江省杭州市西湖区文二路 9 号。如非您本人要求，请尽快联系我们。"
        )
        order_address.change_address(number, OLD, actor="staff:service")  # and back
        assert len(sms.get_provider().sent) == 2
        back = sms.get_provider().sent[1]
        assert back.phone == OLD["phone"] and "Buyer web 13800138000 1 Road" in back.text
    buyer_of(app, "web").post(f"/orders/{number}/address", NEW)
    with app.app_context():
        assert written(app, number)["address"] == NEW
        assert len(sms.get_provider().sent) == 2  # their own change: nothing to tell
        payloads = [
            e.payload
            for e in get_state().session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.topic == order_address.TOPIC)
                .order_by(OutboxEvent.id)
            )
        ]
        assert [(p["changed_by"], p["change"]) for p in payloads] == [
            ("shop", 1),
            ("shop", 2),
            ("buyer", 3),
        ]
