"""The owner, on a phone, refunds one item of an order that has not shipped; the buyer sees
it on the order, and the rest ships. Every page involved reads well and fits the phone."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import expect
from sqlalchemy import select

from koudai_flask.connectors.logistics.kuaidi100 import TrackingCheckpoint
from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.models import Order
from koudai_flask.services import (
    catalog,
    customers,
    inventory,
    logistics,
    orders,
    staff,
    theme,
)
from tests.e2e.conftest import buyer_login, sqlite_shop, staff_login
from tests.e2e.test_after_sales import PASSWORD, fits_and_reads

SIGNED_AT = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)  # 15:30 in Shanghai
PHONE = {"viewport": {"width": 375, "height": 812}, "locale": "zh-CN", "is_mobile": True}


def tea_shop(make_app, tmp_path, name: str, lines: dict[str, int], *, shipped: bool):
    """A shop selling a gaiwan (GW, ¥88) and a pitcher (GD, ¥66), its owner, and 李雷's
    paid order of ``lines`` (shipped whole with ``shipped``); returns the app and number."""
    app = make_app(sqlite_shop(tmp_path, name), KOUDAI_OFFLINE_PAYMENT=True)
    with app.app_context():
        for title, slug, code, price in (
            ("白瓷盖碗 Gaiwan", "gaiwan", "GW", 8800),
            ("公道杯 Pitcher", "pitcher", "GD", 6600),
        ):
            catalog.create_product(
                title=title, slug=slug, skus=[{"code": code, "price": price, "stock": 4}]
            )
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        theme.update(
            return_address={
                "name": "茶铺售后",
                "phone": "0571-88886666",
                "address": "杭州市西湖区文三路 90 号",
            }
        )
        buyer = customers.register(password="buyer-pass-1", email="lei@buyers.cn", name="李雷")
        order = orders.place(
            channel="web",
            lines=[{"sku": code, "quantity": units} for code, units in lines.items()],
            customer=buyer,
        )
        orders.mark_paid(order.number, amount=order.total, transaction_id="t1", provider="offline")
        if shipped:
            orders.ship(order.number, carrier="shunfeng", tracking_number="SF600002")
        return app, order.number


def test_one_item_refunded_before_shipping_on_phones(make_app, tmp_path, browser, shots):
    app, number = tea_shop(make_app, tmp_path, "line-refunds.db", {"GW": 2, "GD": 1}, shipped=False)
    server = LoopbackServer(app)
    found: list[str] = []
    try:
        admin = browser.new_context(**PHONE).new_page()
        staff_login(admin, server.url, "owner@shop.cn", PASSWORD)
        admin.goto(f"{server.url}/shop-admin/orders/{number}")
        admin.locator("#refund-lines summary").click()
        admin.fill("input[name=refund-GW]", "1")
        admin.fill("#refund-form input[name=reason]", "少一只，缺货")
        found += fits_and_reads(admin)
        shots(admin, "refund-lines")
        admin.locator("#refund").click()
        expect(admin.locator("#status")).to_have_attribute("data-status", "paid")
        expect(admin.locator("main")).to_contain_text("88.00")  # the amount refunded
        found += fits_and_reads(admin)
        admin.fill("input[name=tracking_number]", "SF600001")
        admin.locator("#ship").click()
        expect(admin.locator("#status")).to_have_attribute("data-status", "shipped")

        shop = browser.new_context(**PHONE).new_page()
        buyer_login(shop, server.url, "lei@buyers.cn", "buyer-pass-1")
        shop.goto(f"{server.url}/shop/orders/{number}")
        expect(shop.locator(".kd-line-refunded")).to_have_text("已退 1 件")
        expect(shop.locator("#timeline")).to_contain_text("部分退款")
        found += fits_and_reads(shop)
        shots(shop, "line-refunded")
    finally:
        server.stop()
    assert found == []
    with app.app_context():
        order = get_state().session.scalar(select(Order).where(Order.number == number))
        assert (order.status, order.refunded_amount) == ("shipped", 8800)
        assert inventory.available("GW") == 3  # one shipped, one back on the shelf


def test_the_buyer_returns_one_item_on_a_phone(make_app, tmp_path, browser, shots):
    app, number = tea_shop(make_app, tmp_path, "return-one.db", {"GW": 2}, shipped=True)
    server = LoopbackServer(app)
    found: list[str] = []
    try:
        shop = browser.new_context(**PHONE).new_page()
        buyer_login(shop, server.url, "lei@buyers.cn", "buyer-pass-1")
        shop.goto(f"{server.url}/shop/orders/{number}")
        shop.locator("#refund summary").click()
        shop.locator("input[name=reason][value=damaged]").check()
        shop.fill("input[name=item-GW]", "1")
        shop.locator("input[name=returning][value='1']").check()
        found += fits_and_reads(shop)
        shots(shop, "return-one")
        shop.locator("#ask-refund").click()
        expect(shop.locator("#asked-items")).to_contain_text("退货退款")
        expect(shop.locator("#asked-items")).to_contain_text("× 1")
        expect(shop.locator("#return-to")).to_contain_text("等待商家同意退货")
        expect(shop.locator("#return-form")).to_have_count(0)

        admin = browser.new_context(**PHONE).new_page()
        staff_login(admin, server.url, "owner@shop.cn", PASSWORD)
        admin.goto(f"{server.url}/shop-admin/orders/{number}")
        expect(admin.locator("#agree-return-form input[name=return_address]")).to_have_value(
            "杭州市西湖区文三路 90 号"
        )
        found += fits_and_reads(admin)
        admin.locator("#agree-return").click()
        expect(admin.locator("#return-agreed")).to_contain_text("茶铺售后")

        shop.reload()
        to = shop.locator("#return-to address")
        expect(to).to_contain_text("茶铺售后 0571-88886666")
        expect(to).to_contain_text("杭州市西湖区文三路 90 号")
        shots(shop, "return-address")
        shop.select_option("#return-form select[name=carrier]", "yuantong")
        shop.fill("#return-form input[name=tracking_number]", "YT9876543210")
        found += fits_and_reads(shop)
        shop.locator("#send-back").click()
        expect(shop.locator("#return-waybill")).to_contain_text("圆通速递 YT9876543210")
        expect(shop.locator(".kd-return-status")).to_have_text("运输中。")
        with app.app_context():  # Kuaidi100 reports the parcel signed for at the shop
            logistics.record_tracking(
                "yuantong",
                "YT9876543210",
                events=[
                    TrackingCheckpoint(SIGNED_AT, "【杭州市】快件已签收 签收人: 前台", "杭州市")
                ],
                state="3",
                source="kuaidi100-push:shutdown",
            )
        shop.reload()
        expect(shop.locator(".kd-return-status")).to_have_text("已签收 2026-11-28 15:30")
        expect(shop.locator("#return-tracking")).to_contain_text("签收人: 前台")
        found += fits_and_reads(shop)
        shots(shop, "return-signed-for")

        admin.goto(f"{server.url}/shop-admin/orders/{number}")
        expect(admin.locator("#refund-request #asked-items")).to_contain_text("退货退款")
        expect(admin.locator("#refund-request #return-waybill")).to_contain_text("YT9876543210")
        expect(admin.locator("input[name=refund-GW]")).to_have_value("1")
        found += fits_and_reads(admin)
        shots(admin, "return-asked")
        expect(admin.locator("#refund-request .kd-return-status")).to_contain_text("已签收")
        expect(admin.locator("#restock")).to_be_checked()  # the parcel came back
        admin.locator("#refund").click()
        # What was asked for is refunded: the order goes on where it was, the buyer is not
        # told "declined".
        expect(admin.locator("#status")).to_have_attribute("data-status", "shipped")
        shop.reload()
        expect(shop.locator("#refund-declined")).to_have_count(0)
        expect(shop.locator(".kd-line-refunded")).to_have_text("已退 1 件")
        found += fits_and_reads(shop)
    finally:
        server.stop()
    assert found == []
    with app.app_context():
        order = get_state().session.scalar(select(Order).where(Order.number == number))
        assert order.refunded_amount == 8800 and order.lines[0].refunded_quantity == 1
        assert inventory.available("GW") == 3  # the returned one is back on the shelf
