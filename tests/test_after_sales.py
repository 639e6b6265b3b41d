"""After-sales in the shop and the back office: the buyer confirms receipt or asks for a
refund, staff refund or decline with a reason the buyer reads."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Order, OrderEvent, OutboxEvent
from koudai_flask.services import order_clock, order_states, orders, theme
from tests.shop_client import ShopClient
from tests.test_admin import build, login


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, dict[str, str]]:
    return build(make_app, database_url)


def buyer(app: Flask, name: str = "web") -> ShopClient:
    client = ShopClient(app)
    client.get("/account/login")
    response = client.post(
        "/account/login", {"login": f"{name}@buyers.cn", "password": "buyer-pass-1"}
    )
    assert response.status_code == 302
    return client


def status(app: Flask, number: str) -> str:
    with app.app_context():
        return get_state().session.scalar(select(Order.status).where(Order.number == number))


def counts(app: Flask) -> tuple[int, int, int]:
    with app.app_context():
        session = get_state().session
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model))
            for model in (OrderEvent, OutboxEvent, AuditEntry)
        )


def ask_refund(client: ShopClient, number: str, **form: str) -> Any:
    client.get(f"/orders/{number}")
    return client.post(f"/orders/{number}/refund", form)


def test_a_refund_asked_in_the_shop_is_answered_in_the_back_office(shop):
    app, numbers = shop
    number = numbers["web"]
    client = buyer(app)
    page = client.text(f"/orders/{number}")
    assert "申请退款" in page and "不想要了" in page

    asked = ask_refund(client, number, reason="damaged", details="壶嘴  有裂缝")
    assert asked.status_code == 302
    assert status(app, number) == "refunding"
    page = client.text(f"/orders/{number}")
    assert "您已申请退款" in page and "商家会在本页答复" in page
    assert "商品破损或有质量问题: 壶嘴 有裂缝" in page

    owner = login(app, "owner")
    dashboard = owner.get("/shop-admin/").get_data(as_text=True)
    assert 'href="/shop-admin/orders?status=refunding">1</a>' in dashboard
    order_page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert "买家申请退款" in order_page and "壶嘴 有裂缝" in order_page
    assert "回到“已付款”" in order_page

    before = counts(app)
    empty = owner.post(
        f"/shop-admin/orders/{number}/decline-refund",
        data={"csrf_token": owner.csrf, "reason": "  "},
        follow_redirects=True,
    )
    assert "请写明拒绝的理由，1 到 200 个字。" in empty.get_data(as_text=True)
    assert (status(app, number), counts(app)) == ("refunding", before)

    declined = owner.post(
        f"/shop-admin/orders/{number}/decline-refund",
        data={"csrf_token": owner.csrf, "reason": "照片里的裂缝是反光，壶完好"},
    )
    assert declined.status_code == 303
    assert status(app, number) == "paid"
    with app.app_context():
        audit = get_state().session.scalar(
            select(AuditEntry).where(AuditEntry.action == "orders.decline_refund")
        )
        assert audit.after["status"] == "paid" and audit.before["status"] == "refunding"
    page = client.text(f"/orders/{number}")
    assert "商家未同意退款" in page and "照片里的裂缝是反光，壶完好" in page
    assert "申请退款" in page  # and may ask again

    # Declined, the order ships as if nothing had happened.
    with app.app_context():
        assert orders.ship(number, carrier="shunfeng", tracking_number="SF1001").status == (
            "shipped"
        )


def test_other_asks_for_words_and_nothing_is_written_without_them(shop):
    app, numbers = shop
    client = buyer(app)
    before = counts(app)
    response = ask_refund(client, numbers["web"], reason="other", details="   ")
    assert response.status_code == 422
    assert "请写明遇到了什么问题。" in response.get_data(as_text=True)
    no_reason = ask_refund(client, numbers["web"], details="坏了")
    assert no_reason.status_code == 422
    assert "请选择退款原因。" in no_reason.get_data(as_text=True)
    assert (status(app, numbers["web"]), counts(app)) == ("paid", before)


def test_only_the_buyer_and_only_for_the_shop_s_own_orders(shop):
    app, numbers = shop
    before = counts(app)
    # Another buyer's order does not exist for them.
    other = buyer(app, "tb-a")
    assert ask_refund(other, numbers["web"], reason="damaged").status_code == 404
    # A marketplace order's after-sales happen on the marketplace, whose state we mirror.
    page = other.text(f"/orders/{numbers['tb-a']}")
    assert "申请退款" not in page
    assert ask_refund(other, numbers["tb-a"], reason="damaged").status_code == 404
    # Without the form's token, nothing.
    client = buyer(app)
    forged = client.post(f"/orders/{numbers['web']}/refund", {"reason": "damaged"}, token=False)
    assert forged.status_code == 400
    assert (status(app, numbers["web"]), status(app, numbers["tb-a"])) == ("paid", "paid")
    assert counts(app) == before


def test_an_unpaid_order_is_cancelled_not_refunded(shop):
    app, numbers = shop
    with app.app_context():
        order = orders.place(
            channel="web",
            lines=[{"sku": "KET", "quantity": 1}],
            customer=get_state().session.scalar(
                select(Order.customer_id).where(Order.number == numbers["web"])
            ),
        )
    client = buyer(app)
    assert "申请退款" not in client.text(f"/orders/{order.number}")
    response = ask_refund(client, order.number, reason="changed_mind")
    assert response.status_code == 302
    assert "这个订单现在不能申请退款。" in client.text(f"/orders/{order.number}")
    assert status(app, order.number) == "pending_payment"


def test_the_buyer_confirms_receipt_once(shop):
    app, numbers = shop
    number = numbers["web"]
    client = buyer(app)
    assert "确认收货" not in client.text(f"/orders/{number}")  # not shipped yet
    with app.app_context():
        orders.ship(number, carrier="shunfeng", tracking_number="SF1002")
    assert "确认收货" in client.text(f"/orders/{number}")
    assert client.post(f"/orders/{number}/received", {}, token=False).status_code == 400
    assert status(app, number) == "shipped"
    assert client.post(f"/orders/{number}/received", {}).status_code == 302
    assert status(app, number) == "completed"
    page = client.text(f"/orders/{number}")
    assert "感谢您的购买！订单已完成。" in page and "确认收货" not in page
    before = counts(app)
    client.post(f"/orders/{number}/received", {})
    assert "这个订单现在不能确认收货。" in client.text(f"/orders/{number}")
    assert counts(app) == before


def test_refund_events_reach_webhook_receivers_by_their_public_names():
    from koudai_flask.services.webhooks import TOPIC_EVENTS

    assert TOPIC_EVENTS["order.refunding"] == "order.refund_requested"
    declined = order_states.RETURNS["refunding", "decline_refund"]
    assert TOPIC_EVENTS[declined] == "order.refund_declined"


def test_an_erp_declines_through_the_api(shop):
    from tests.api_support import API, make_key

    app, numbers = shop
    number = numbers["web"]
    ask_refund(buyer(app), number, reason="changed_mind")
    headers = make_key(app, ["orders.refund"], owner="staff:owner@shop.cn")
    client = app.test_client()
    path = f"{API}/orders/{number}/refund-request/decline"
    before = counts(app)
    empty = client.post(path, json={"reason": ""}, headers=headers)
    assert empty.status_code == 422
    assert (status(app, number), counts(app)[:2]) == ("refunding", before[:2])
    answer = client.post(path, json={"reason": "already packed"}, headers=headers)
    assert answer.status_code == 200 and answer.get_json()["status"] == "paid"
    again = client.post(path, json={"reason": "already packed"}, headers=headers)
    assert again.status_code == 409  # nothing waits to be declined any more


def _age(app: Flask, number: str, days: int) -> None:
    """Pretend ``number`` was last changed ``days`` ago."""
    from datetime import timedelta

    from sqlalchemy import update

    from koudai_flask.models.base import utcnow

    with app.app_context():
        session = get_state().session
        session.execute(
            update(Order)
            .where(Order.number == number)
            .values(updated_at=utcnow() - timedelta(days=days))
        )
        session.commit()


def test_orders_the_buyer_never_confirms_complete_after_ten_days(shop):
    app, numbers = shop
    web, marketplace = numbers["web"], numbers["tb-a"]
    with app.app_context():
        for number in (web, marketplace):
            orders.ship(number, carrier="shunfeng", tracking_number=f"SF{number[-6:]}")
        recent = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}]).number
        orders.mark_paid(recent, amount=9900, transaction_id="x-recent", provider="offline")
        orders.ship(recent, carrier="shunfeng", tracking_number="SF777777")
        asked = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}]).number
        orders.mark_paid(asked, amount=9900, transaction_id="x-asked", provider="offline")
        orders.ship(asked, carrier="shunfeng", tracking_number="SF888888")
        orders.request_refund(asked, reason="not received")
    for number in (web, marketplace, asked):
        _age(app, number, 11)
    _age(app, recent, 9)
    with app.app_context():
        assert order_clock.complete_overdue() == [web]
        assert order_clock.complete_overdue() == []  # done once
        last = (
            get_state().session.scalars(select(OrderEvent).order_by(OrderEvent.id.desc())).first()
        )
        assert (last.actor, last.to_status) == ("system", "completed")
    assert [status(app, n) for n in (web, marketplace, recent, asked)] == [
        "completed",
        "shipped",  # the marketplace confirms its own orders; sync mirrors it
        "shipped",  # nine days: not yet
        "refunding",  # waits on staff, whatever its age
    ]


def test_auto_completion_can_be_turned_off(make_app, database_url):
    app, numbers = build(make_app, database_url)
    app.config["KOUDAI_AUTO_COMPLETE_AFTER"] = None
    with app.app_context():
        orders.ship(numbers["web"], carrier="shunfeng", tracking_number="SF123456")
    _age(app, numbers["web"], 100)
    with app.app_context():
        assert order_clock.complete_overdue() == []
    assert status(app, numbers["web"]) == "shipped"


def on_hand(app: Flask, code: str = "KET") -> int:
    from koudai_flask.models import Sku, StockLevel

    with app.app_context():
        return get_state().session.scalar(
            select(StockLevel.on_hand)
            .join(Sku, Sku.id == StockLevel.sku_id)
            .where(Sku.code == code)
        )


def test_a_parcel_that_came_back_goes_back_on_the_shelf_with_its_refund(shop):
    from koudai_flask.models import StockMovement
    from tests.helpers import assert_ledger_consistent

    app, numbers = shop
    number = numbers["web"]
    with app.app_context():
        orders.ship(number, carrier="shunfeng", tracking_number="SF300001")
    shelf = on_hand(app)
    ask_refund(buyer(app), number, reason="damaged")
    owner = login(app, "owner")
    page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'name="restock"' in page and "商品已退回，放回库存" in page

    before = counts(app)
    part = owner.post(
        f"/shop-admin/orders/{number}/refund",
        data={"csrf_token": owner.csrf, "amount": "10.00", "restock": "1"},
        follow_redirects=True,
    )
    assert "只有全额退款时才能把商品放回库存" in part.get_data(as_text=True)
    assert (on_hand(app), counts(app), status(app, number)) == (shelf, before, "refunding")

    done = owner.post(
        f"/shop-admin/orders/{number}/refund",
        data={"csrf_token": owner.csrf, "amount": "", "restock": "1"},
    )
    assert done.status_code == 303
    assert (status(app, number), on_hand(app)) == ("refunded", shelf + 1)
    with app.app_context():
        session = get_state().session
        movement = session.scalars(select(StockMovement).order_by(StockMovement.id.desc())).first()
        assert (movement.reason, movement.on_hand_delta, movement.reference) == (
            "return",
            1,
            number,
        )
        audit = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "orders.refund")
            .order_by(AuditEntry.id.desc())
        ).first()
        assert audit.after["restocked"] == {"KET": 1}
        assert_ledger_consistent(session)


def test_an_order_paid_on_its_channel_is_restocked_through_the_api(shop):
    from tests.api_support import API, make_key

    app, _ = shop
    with app.app_context():
        number = orders.place(
            channel="tb-a",
            lines=[{"sku": "KET", "quantity": 2, "unit_price": 9900}],
            external_id="T-back",
        ).number
        orders.mark_paid(number, amount=19800, transaction_id="tb-back", provider="api:tb-a")
        orders.ship(number, carrier="yuantong", tracking_number="YT300002")
    shelf = on_hand(app)
    headers = make_key(app, ["orders.refund"], owner="staff:owner@shop.cn")
    answer = app.test_client().post(
        f"{API}/orders/{number}/refunds", json={"restock": True}, headers=headers
    )
    assert answer.status_code == 201 and answer.get_json()["status"] == "refunded"
    assert on_hand(app) == shelf + 2


def test_buy_again_fills_the_cart_with_what_is_still_sold(shop):
    from koudai_flask.models import Sku
    from koudai_flask.services import catalog

    app, numbers = shop
    number = numbers["web"]
    client = buyer(app)
    page = client.text(f"/orders/{number}")
    assert "再次购买" in page
    assert client.post(f"/orders/{number}/again", {}, token=False).status_code == 400
    assert client.post(f"/orders/{number}/again", {}).status_code == 302
    cart = client.text("/cart")
    assert "订单 " + number + " 的商品已加入购物车。" in cart and "Kettle" in cart
    # Another buyer cannot copy this order.
    assert buyer(app, "tb-a").post(f"/orders/{number}/again", {}).status_code == 404
    # An item taken off sale is named, not added.
    with app.app_context():
        catalog.create_product(title="Teapot", skus=[{"code": "POT", "price": 5900, "stock": 5}])
        second = orders.place(
            channel="web",
            lines=[{"sku": "POT", "quantity": 1}],
            customer=get_state().session.scalar(
                select(Order.customer_id).where(Order.number == number)
            ),
        ).number
        catalog.archive_product(
            get_state().session.scalar(select(Sku.product_id).where(Sku.code == "POT"))
        )
        orders.cancel(second, reason="changed my mind")
    client.post(f"/orders/{second}/again", {})
    assert "已下架：Teapot" in client.text("/cart")


def test_a_partial_refund_meanwhile_keeps_the_buyer_s_request_on_show(shop):
    app, numbers = shop
    number = numbers["web"]
    ask_refund(buyer(app), number, reason="missing", details="少了杯盖")
    owner = login(app, "owner")
    owner.post(
        f"/shop-admin/orders/{number}/refund",
        data={"csrf_token": owner.csrf, "amount": "10.00", "reason": "先退杯盖的钱"},
    )
    assert status(app, number) == "refunding"
    page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    asked = page[
        page.index('id="refund-request"') : page.index(
            "</section>", page.index('id="refund-request"')
        )
    ]
    assert "少了杯盖" in asked and "先退杯盖的钱" not in asked


def test_the_buyer_says_which_items_and_that_they_go_back(shop):
    app, numbers = shop
    with app.app_context():
        buyer_id = get_state().session.scalar(  # the buyer of the web order, not the guest's
            select(Order.customer_id).where(Order.number == numbers["web"])
        )
        order = orders.place(
            channel="web", lines=[{"sku": "KET", "quantity": 3}], customer=buyer_id
        )
        number = order.number
        orders.mark_paid(number, amount=order.total, transaction_id="x-3", provider="offline")
    client = buyer(app)
    page = client.text(f"/orders/{number}")
    assert 'id="refund-items"' in page and 'name="item-KET"' in page and 'max="3"' in page
    assert 'name="returning"' not in page  # nothing shipped: nothing to send back

    before = counts(app)
    none = ask_refund(client, number, reason="damaged", **{"item-KET": "0"})
    assert none.status_code == 422 and 'data-error="items"' in none.get_data(as_text=True)
    assert (status(app, number), counts(app)) == ("paid", before)

    with app.app_context():
        orders.ship(number, carrier="shunfeng", tracking_number="SF700001")
    page = client.text(f"/orders/{number}")
    assert "退货退款" in page and "仅退款（不退货，或没收到货）" in page
    asked = ask_refund(client, number, reason="damaged", returning="1", **{"item-KET": "2"})
    assert asked.status_code == 302 and status(app, number) == "refunding"
    with app.app_context():
        request = order_states.refund_request(
            get_state().session, order_states.get_order(get_state().session, number)
        )
        assert (request.asked_lines, request.returning) == ({"KET": 2}, True)
    page = client.text(f"/orders/{number}")
    assert 'id="asked-items"' in page and "× 2" in page

    owner = login(app, "owner")
    order_page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="asked-items"' in order_page and "退货退款" in order_page
    assert 'name="refund-KET" min="0" max="3" value="2"' in order_page  # ready to refund


def test_a_request_for_items_the_order_has_not_is_refused_and_changes_nothing(shop):
    from koudai_flask.errors import ValidationError

    app, numbers = shop
    number = numbers["web"]
    before = counts(app)
    with app.app_context():
        for lines, returning, reason in (
            ({"NOPE": 1}, False, "refund_unknown_line"),
            ({"KET": 2}, False, "refund_too_many_units"),
            (None, True, "return_unshipped"),
        ):
            with pytest.raises(ValidationError) as refused:
                orders.request_refund(
                    number, reason="x", actor="buyer", lines=lines, returning=returning
                )
            assert refused.value.reason == reason
    assert (status(app, number), counts(app)) == ("paid", before)


def test_the_buyer_gives_the_return_waybill_and_staff_read_it(shop):
    app, numbers = shop
    with app.app_context():
        buyer_id = get_state().session.scalar(
            select(Order.customer_id).where(Order.number == numbers["web"])
        )
        order = orders.place(
            channel="web", lines=[{"sku": "KET", "quantity": 2}], customer=buyer_id
        )
        number = order.number
        orders.mark_paid(number, amount=order.total, transaction_id="x-r", provider="offline")
        orders.ship(number, carrier="shunfeng", tracking_number="SF700002")
    client = buyer(app)
    plain = numbers["web"]
    with app.app_context():
        orders.ship(plain, carrier="shunfeng", tracking_number="SF700003")
    ask_refund(client, plain, reason="damaged")  # money only: nothing to post back
    client.get(f"/orders/{plain}")
    refused = client.post(
        f"/orders/{plain}/return",
        {"carrier": "shunfeng", "tracking_number": "SF123456789"},
        follow_redirects=True,
    )
    assert "这笔订单没有待寄回的退货。" in refused.get_data(as_text=True)

    ask_refund(client, number, reason="damaged", returning="1", **{"item-KET": "1"})
    page = client.text(f"/orders/{number}")
    # The seller has not agreed yet: no address, no waybill form, and a waybill is refused.
    assert "退货运单：尚未填写。" in page and 'id="return-form"' not in page
    assert "等待商家同意退货；同意后这里会显示退货地址。" in page and "<address>" not in page
    early = client.post(
        f"/orders/{number}/return",
        {"carrier": "shunfeng", "tracking_number": "SF123456789"},
        follow_redirects=True,
    )
    assert "商家尚未同意退货：同意后本页会显示退货地址。" in early.get_data(as_text=True)
    owner = login(app, "owner")
    agree = f"/shop-admin/orders/{number}/return/agree"
    # No return address on the shop's profile: staff type one, and an empty form is refused.
    order_page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="no-return-address"' in order_page
    assert re.search(r'name="return_name"[^>]*value=""', order_page)
    empty = {"csrf_token": owner.csrf, "return_name": "", "return_phone": "", "return_address": ""}
    unchanged = counts(app)
    refused = owner.post(agree, data=empty, follow_redirects=True).get_data(as_text=True)
    assert "请填写买家寄回商品的地址：收件人、电话和地址" in refused
    assert counts(app) == unchanged
    with app.app_context():
        theme.update(
            return_address={"name": "售后组", "phone": "0571-88886666", "address": "文三路 90 号"}
        )
    order_page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert re.search(r'name="return_phone"[^>]*value="0571-88886666"', order_page)
    assert 'id="no-return-address"' not in order_page
    # This order's goods go to the other warehouse: staff change the address before agreeing.
    agreed = owner.post(
        agree,
        data={
            **empty,
            "return_name": "售后组",
            "return_phone": "0571-88886666",
            "return_address": "文三路 90 号 B 仓",
        },
    )
    assert agreed.status_code in (302, 303)
    order_page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="return-agreed"' in order_page and 'id="agree-return"' not in order_page
    waiting = owner.get("/shop-admin/orders?status=refunding").get_data(as_text=True)
    assert f'data-number="{number}"' in waiting and "kd-return-arrived" not in waiting
    page = client.text(f"/orders/{number}")
    assert 'id="return-form"' in page and "商家已同意退货，请将商品寄回：" in page
    assert "<address>售后组 0571-88886666<br>文三路 90 号 B 仓</address>" in page
    assert "已同意退货" in page  # on the timeline
    before = counts(app)
    for form, said in (
        ({"carrier": "pigeon", "tracking_number": "SF123456789"}, "请从列表中选择快递公司。"),
        ({"carrier": "shunfeng", "tracking_number": "SF 123"}, "不是快递公司的运单号格式"),
    ):
        answer = client.post(f"/orders/{number}/return", form, follow_redirects=True)
        assert said in answer.get_data(as_text=True)
    assert counts(app) == before

    sent = client.post(
        f"/orders/{number}/return", {"carrier": "shunfeng", "tracking_number": "SF123456789"}
    )
    assert sent.status_code == 302
    page = client.text(f"/orders/{number}")
    assert "退货运单：顺丰速运 SF123456789。" in page and "退货已寄出" in page
    order_page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert "退货运单：顺丰速运 SF123456789。" in order_page
    assert status(app, number) == "refunding"


def test_the_buyer_withdraws_their_request_and_the_order_goes_on(shop):
    from koudai_flask.errors import ValidationError

    app, numbers = shop
    number = numbers["web"]
    client = buyer(app)
    ask_refund(client, number, reason="changed_mind")
    page = client.text(f"/orders/{number}")
    assert 'id="withdraw-refund"' in page and "撤销申请" in page
    withdrawn = client.post(f"/orders/{number}/refund/withdraw", {})
    assert withdrawn.status_code == 302 and status(app, number) == "paid"
    page = client.text(f"/orders/{number}")
    assert 'id="refund-declined"' not in page  # taken back, not declined
    assert 'id="refund-asked"' not in page and "退款申请已撤销。" in page  # the flash
    again = client.post(f"/orders/{number}/refund/withdraw", {}, follow_redirects=True)
    assert "这笔退款申请现在不能撤销。" in again.get_data(as_text=True)

    with app.app_context():
        orders.request_refund(number, reason="refund by staff", actor="staff:1")
        before = counts(app)
        with pytest.raises(ValidationError) as refused:
            orders.withdraw_refund(number, actor="buyer")  # not theirs to take back
        assert refused.value.reason == "not_your_request"
    assert (status(app, number), counts(app)) == ("refunding", before)


def test_agreeing_to_a_return_is_refused_when_it_cannot_be_and_changes_nothing(shop):
    from koudai_flask.errors import ValidationError
    from koudai_flask.services import returns

    app, numbers = shop
    number = numbers["web"]
    to = {"name": "售后组", "phone": "0571-88886666", "address": "文三路 90 号"}
    with app.app_context():
        orders.ship(number, carrier="shunfeng", tracking_number="SF700010")
        orders.request_refund(number, reason="x", actor="buyer")  # money only
        before = counts(app)
        for address, reason in ((to, "no_return_asked"), (None, "no_return_address")):
            with pytest.raises(ValidationError) as refused:
                returns.agree(number, actor="staff:1", address=address)
            assert refused.value.reason == reason
        orders.decline_refund(number, reason="请先联系客服", actor="staff:1")
        orders.request_refund(number, reason="y", actor="buyer", returning=True)
        with pytest.raises(ValidationError) as refused:
            returns.agree(number, actor="staff:1", address={**to, "phone": "call me"})
        assert refused.value.reason == "return_address_phone"
        middle = counts(app)
        assert middle != before  # the decline and the new request were written
    assert counts(app) == middle
    # Warehouse staff may not answer refund requests, so not agree to a return either.
    warehouse = login(app, "warehouse")
    answer = warehouse.post(
        f"/shop-admin/orders/{number}/return/agree", data={"csrf_token": warehouse.csrf}
    )
    assert answer.status_code == 403
    assert counts(app) == middle


def test_a_part_refunded_as_agreed_settles_the_buyer_s_request(shop):
    """The buyer asks for all of it back; the seller agrees with them on part and ticks
    that it settles the request: the order goes back to shipped, nothing is left open, and
    the buyer reads no refusal. Without an open request, the tick is refused first."""
    app, numbers = shop
    number = numbers["web"]
    with app.app_context():
        orders.ship(number, carrier="shunfeng", tracking_number="SF2001")
    client = buyer(app)
    ask_refund(client, number, reason="damaged", details="壶盖有划痕")
    owner = login(app, "owner")
    page = owner.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'name="settles"' in page

    done = owner.post(
        f"/shop-admin/orders/{number}/refund",
        data={
            "csrf_token": owner.csrf,
            "amount": "30",
            "reason": "划痕，协商退 30 元",
            "settles": "1",
        },
    )
    assert done.status_code == 303
    assert status(app, number) == "shipped"
    with app.app_context():
        session = get_state().session
        order = session.scalar(select(Order).where(Order.number == number))
        assert order.refunded_amount == 3000
        assert order_states.refund_request(session, order) is None
        last = order.events[-1]
        assert (last.from_status, last.to_status, last.detail) == (
            "refunding",
            "shipped",
            {"ended": "settled"},
        )
    shown = client.text(f"/orders/{number}")
    assert "¥30.00" in shown and "商家未同意退款" not in shown and "您已申请退款" not in shown

    # Nothing open any more: the same tick is refused before any money moves.
    before = counts(app)
    again = owner.post(
        f"/shop-admin/orders/{number}/refund",
        data={"csrf_token": owner.csrf, "amount": "10", "settles": "1"},
        follow_redirects=True,
    )
    assert f"订单 {number} 没有待处理的退款申请，无需了结。" in again.get_data(as_text=True)
    assert counts(app) == before
    with app.app_context():
        order = get_state().session.scalar(select(Order).where(Order.number == number))
        assert order.refunded_amount == 3000


def test_without_the_tick_a_part_refunded_leaves_the_request_open(shop):
    app, numbers = shop
    number = numbers["web"]
    ask_refund(buyer(app), number, reason="damaged", details="壶盖有划痕")
    owner = login(app, "owner")
    owner.post(
        f"/shop-admin/orders/{number}/refund",
        data={"csrf_token": owner.csrf, "amount": "30", "reason": "先退 30 元"},
    )
    assert status(app, number) == "refunding"  # the rest is still asked for


def test_an_erp_settles_a_request_with_part_of_the_money_through_the_api(shop):
    from tests.api_support import API, make_key

    app, numbers = shop
    number = numbers["web"]
    headers = make_key(app, ["orders.refund"], owner="staff:owner@shop.cn")
    client = app.test_client()
    path = f"{API}/orders/{number}/refunds"
    before = counts(app)
    nothing = client.post(path, json={"amount": 1000, "settles": True}, headers=headers)
    assert nothing.status_code == 422
    assert nothing.get_json()["detail"] == {"number": number}
    assert counts(app) == before and status(app, number) == "paid"
    ask_refund(buyer(app), number, reason="changed_mind")
    settled = client.post(path, json={"amount": 1000, "settles": True}, headers=headers)
    assert settled.status_code == 201 and settled.get_json()["status"] == "paid"
    assert settled.get_json()["refunded_amount"] == 1000
