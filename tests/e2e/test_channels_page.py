"""An owner checks a linked Taobao shop on a phone: status, drift, and binds one more SKU."""

from __future__ import annotations

from playwright.sync_api import expect

from koudai_flask.connectors.base import RemoteStock
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.services import catalog, channels, stock_sync, sync_log
from tests.e2e.conftest import PAST_THE_SCREEN, PHONE, PHONE_UA, sqlite_shop, staff_login
from tests.sync_support import link_shop, seed_shirts
from tests.test_admin import PASSWORD, build


def test_the_channels_pages_on_a_phone(make_app, tmp_path, browser, shots):
    url = sqlite_shop(tmp_path, "channels.db")
    app, _ = build(make_app, url)
    sandbox = TaobaoSandbox()
    sandbox.seed_demo()  # its socks carry the outer id SOCK-M, one of our SKU codes
    with app.app_context():
        seed_shirts(stock=10)
        catalog.create_product(title="羊毛袜", skus=[{"code": "SOCK-M", "price": 2500, "stock": 6}])
        shop = link_shop(app, sandbox, "tb")
        item = str(shop.item.num_iid)
        white, blue = str(shop.sku_id("SHIRT-W")), str(shop.sku_id("SHIRT-B"))
        seen = [RemoteStock(item, white, 7, "SHIRT-W"), RemoteStock(item, blue, 10, "SHIRT-B")]
        stock_sync.compare("tb", seen, record=True, repair=False)
        sync_log.record(
            channels.info("tb").id,
            "push_shipment",
            ["KD0001"],
            error_kind="PermanentFailure",
            message="PermanentFailure: trade closed",
            attempts=1,
        )
    server = LoopbackServer(app)
    context = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, locale="zh-CN")
    try:
        page = context.new_page()
        staff_login(page, server.url, "owner@shop.cn", PASSWORD)
        page.locator('.kd-menu a[href$="/shop-admin/channels"]').click()
        expect(page.locator("#channels tbody tr")).to_have_count(3)  # tb, tb-a, tb-b
        row = page.locator('tr[data-channel="tb"]')
        assert row.get_attribute("data-status") == "ok"
        assert row.locator(".kd-dead-letters").inner_text() == "1"
        assert row.locator(".kd-linked").inner_text() == "2"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shots(page, "channels")

        row.locator("a").first.click()
        page.wait_for_url("**/shop-admin/channels/tb")
        assert page.locator('#listings tr[data-sku="SHIRT-W"]').get_attribute("data-drifted") == (
            "yes"
        )
        expect(page.locator("#letters tr[data-letter]")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # Listings, drift and dead letters are cards: every figure on the screen.
        assert not page.evaluate(PAST_THE_SCREEN, PHONE["width"])
        shots(page, "channel")

        page.locator("#mapping-link").click()
        page.wait_for_url("**/shop-admin/channels/tb/mapping")
        assert not page.evaluate(PAST_THE_SCREEN, PHONE["width"])
        shots(page, "mapping")
        page.locator("#auto-bind").click()
        page.wait_for_url("**/shop-admin/channels/tb/mapping")
        expect(page.locator('#bound tr[data-sku="SOCK-M"]')).to_have_count(1)
        shots(page, "auto-bound")

        page.goto(f"{server.url}/shop-admin/channels/tb")
        page.locator("#letters .kd-discard").click()
        page.wait_for_url("**/shop-admin/channels/tb#dead-letters")
        expect(page.locator("#letters tr[data-letter]")).to_have_count(0)
        assert page.locator("#linked-count").inner_text() == "3"
        shots(page, "discarded")
    finally:
        context.close()
        server.stop()
        sandbox.stop()
