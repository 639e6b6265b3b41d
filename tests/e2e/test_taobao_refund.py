"""A Taobao buyer buys and asks for a refund on the sandbox's own page; the owner, on a phone,
sees the order held and is sent to Taobao; the seller agrees there and our order follows."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.jobs import sync
from koudai_flask.models import Order
from koudai_flask.services import inventory, staff
from tests.e2e.conftest import PHONE, PHONE_UA, sqlite_shop, staff_login
from tests.sync_support import link_shop, seed_shirts
from tests.test_admin import PASSWORD


def test_a_refund_made_on_taobao_reaches_the_back_office(make_app, tmp_path, browser, shots):
    app = make_app(sqlite_shop(tmp_path, "taobao-refund.db"))
    sandbox = TaobaoSandbox()
    with app.app_context():
        seed_shirts(stock=10)
        shop = link_shop(app, sandbox, "tb")
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
    server = LoopbackServer(app)
    context = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, locale="zh-CN")

    def sync_now() -> tuple[str, str, int, int]:
        """Run the sync; the order's number, status, refunded amount and total."""
        with app.app_context():
            sync.sync_tick()
            order = get_state().session.scalar(select(Order).where(Order.channel == "tb"))
            assert order is not None
            return order.number, order.status, order.refunded_amount, order.total

    try:
        taobao = context.new_page()
        taobao.goto(sandbox.url)
        blue = taobao.locator(f'[data-stock="{shop.item.num_iid}:{shop.sku_id("SHIRT-B")}"]')
        blue.locator("xpath=ancestor::div[@class='sku']").locator("button.buy").click()
        expect(taobao.locator("#done")).to_contain_text("已下单并付款")
        number = sync_now()[0]
        with app.app_context():
            assert inventory.available("SHIRT-B") == 9

        # The row the page redraws every second carries the buyer's button too.
        taobao.wait_for_timeout(1500)
        taobao.locator("#trades button[value=ask]").first.click()
        expect(taobao.locator("#trades")).to_contain_text("WAIT_SELLER_AGREE")
        shots(taobao, "asked-on-taobao")
        assert sync_now()[1] == "refunding"

        admin = context.new_page()
        staff_login(admin, server.url, "owner@shop.cn", PASSWORD)
        admin.goto(f"{server.url}/shop-admin/orders/{number}")
        expect(admin.locator("#refund-on-channel")).to_contain_text("请在那里同意或拒绝")
        expect(admin.locator("#decline-refund-form")).to_have_count(0)
        expect(admin.locator("#ship-form")).to_have_count(0)
        assert admin.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shots(admin, "held-for-taobao")

        taobao.goto(sandbox.url)
        taobao.locator("#trades button[value=agree]").first.click()
        expect(taobao.locator("#trades")).to_contain_text("TRADE_CLOSED")
        _, status, refunded, total = sync_now()
        assert (status, refunded) == ("refunded", total)
        admin.reload()
        expect(admin.locator("#status")).to_have_attribute("data-status", "refunded")
        shots(admin, "refunded")
        with app.app_context():
            assert inventory.available("SHIRT-B") == 10
    finally:
        context.close()
        server.stop()
        sandbox.stop()
