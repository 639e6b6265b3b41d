"""Staff who may answer a buyer's refund request are told of it by e-mail, over real SMTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from koudai_flask.services import catalog, channels, orders, returns, staff
from tests.test_notifications import SmtpServer, mail_settings

PASSWORD = "correct-horse-battery"
RETURN_TO = {"name": "售后组", "phone": "0571-88886666", "address": "杭州市文三路 90 号"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


def paid_order() -> str:
    order = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}])
    orders.mark_paid(order.number, amount=order.total, transaction_id=order.number, provider="x")
    return order.number


def test_a_buyer_s_refund_request_reaches_the_staff_who_may_answer_it(
    make_app: Any, database_url: str, smtp: SmtpServer
) -> None:
    app = make_app(database_url, KOUDAI_MAIL=mail_settings(smtp), SERVER_NAME="shop.example.com")
    with app.app_context():
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 9}])
        channels.create("taobao", "tb", settings={})
        for role in ("owner", "customer_service", "warehouse", "viewer"):
            staff.grant(f"staff:{role}@shop.cn", role, email=f"{role}@shop.cn", password=PASSWORD)
        staff.grant(  # may refund, but only the Taobao shop's orders
            "staff:agent@shop.cn",
            "customer_service",
            channels=["tb"],
            email="agent@shop.cn",
            password=PASSWORD,
        )
        staff.grant("staff:gone@shop.cn", "owner", email="gone@shop.cn", password=PASSWORD)
        staff.revoke("staff:gone@shop.cn")

        number = paid_order()
        orders.request_refund(number, reason="破损: 壶嘴有裂缝", actor="buyer")
        assert sorted(mail.rcpt_tos[0] for mail in smtp.state.received) == [
            "customer_service@shop.cn",
            "owner@shop.cn",
        ]
        message = smtp.state.received[0].message
        assert message["Subject"] == f"退款申请：订单 {number}"
        text = message.get_body(("plain",)).get_content()
        assert f"买家申请订单 {number}（¥99.00）退款：破损: 壶嘴有裂缝" in text
        assert f"http://shop.example.com/shop-admin/orders/{number}" in text

        # Staff asking on the way to a refund tell nobody.
        orders.request_refund(paid_order(), reason="refund by staff", actor="staff:1")
        assert len(smtp.state.received) == 2


def test_without_mail_nothing_is_sent_and_the_request_stands(make_app, database_url, smtp):
    app = make_app(database_url)
    with app.app_context():
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 9}])
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        number = paid_order()
        assert orders.request_refund(number, reason="late", actor="buyer").status == "refunding"
    assert smtp.state.received == []


def test_the_alert_names_the_items_and_a_return(make_app, database_url, smtp):
    app = make_app(database_url, KOUDAI_MAIL=mail_settings(smtp))
    with app.app_context():
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 9}])
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        order = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 2}])
        orders.mark_paid(order.number, amount=order.total, transaction_id="t", provider="x")
        orders.ship(order.number, carrier="shunfeng", tracking_number="SF800001")
        orders.request_refund(
            order.number, reason="不想要了", actor="buyer", lines={"KET": 1}, returning=True
        )
    [mail] = smtp.state.received
    text = mail.message.get_body(("plain",)).get_content()
    assert "商品：Kettle (KET) × 1" in text
    assert "买家希望退货：请在订单页同意退货（买家随即收到退货地址），收到商品后再退款。" in text
    # Without SERVER_NAME no link can be built outside a request: the number stands in.
    assert text.strip().splitlines()[-1] == f"请退款，或写明理由拒绝：{order.number}"

    with app.app_context():  # the buyer posts the goods: staff learn what parcel to expect
        returns.agree(order.number, actor="staff:owner@shop.cn", address=RETURN_TO)
        returns.send_back(order.number, carrier="yuantong", tracking_number="YT800002")
    posted = smtp.state.received[-1].message
    assert len(smtp.state.received) == 2
    assert posted["Subject"] == f"退货寄回：订单 {order.number}"
    assert (
        posted.get_body(("plain",))
        .get_content()
        .startswith(f"买家已通过圆通速递寄回订单 {order.number} 的商品，运单号 YT800002。")
    )
