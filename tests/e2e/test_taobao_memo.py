"""The seller marks a Taobao trade on the sandbox's memo page, on a phone: our order takes the
memo and flag; a memo changed here shows on that page after the push."""

from __future__ import annotations

from playwright.sync_api import expect

from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.jobs import sync
from koudai_flask.services import order_memo
from tests.e2e.conftest import PHONE, PHONE_UA, sqlite_shop
from tests.sync_support import link_shop, seed_shirts
from tests.test_taobao_memo import memo, number_of


def test_a_memo_set_on_taobao_reaches_our_order_and_ours_goes_back(
    make_app, tmp_path, browser, shots
):
    app = make_app(sqlite_shop(tmp_path, "taobao-memo.db"))
    sandbox = TaobaoSandbox()
    context = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, locale="zh-CN")
    try:
        with app.app_context():
            seed_shirts(stock=10)
            shop = link_shop(app, sandbox, "tb")
            trade = sandbox.add_trade(
                [(shop.item.num_iid, shop.sku_id("SHIRT-W"), 1)],
                buyer_nick="买家一号",
                buyer_message="请周六送货",
            )
            tid = trade["tid"]
            sync.sync_tick()
            number = number_of(tid)

        taobao = context.new_page()
        taobao.goto(sandbox.url)
        taobao.locator('a[href="/sandbox/memos"]').click()
        card = taobao.locator(f"#trade-{tid}")
        expect(card).to_contain_text("请周六送货")
        card.locator("textarea[name=memo]").fill("已电话确认，周六上午送")
        card.locator("select[name=flag]").select_option("1")
        card.locator("button[type=submit]").click()
        expect(taobao.locator("#done")).to_contain_text(f"memo of trade {tid} saved")
        assert taobao.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shots(taobao, "memo-set-on-taobao")
        with app.app_context():
            sync.sync_tick()
            assert memo(number) == ("已电话确认，周六上午送", 1, 1, False, "channel:tb")

            order_memo.set_memo(number, memo="改为顺丰", flag=4, actor="staff:owner")
        taobao.reload()
        expect(card.locator("textarea[name=memo]")).to_have_value("改为顺丰")
        expect(card.locator("select[name=flag]")).to_have_value("4")
        shots(taobao, "our-memo-on-taobao")
    finally:
        context.close()
        sandbox.stop()
