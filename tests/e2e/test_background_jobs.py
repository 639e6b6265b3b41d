"""An owner on a phone sees that a background event gave up, reads why, and sends it again."""

from __future__ import annotations

from playwright.sync_api import expect

from koudai_flask import Koudai
from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from tests.e2e.conftest import PHONE, PHONE_UA, sqlite_shop, staff_login
from tests.test_admin import PASSWORD, build
from tests.test_outbox_review import Downstream, give_up


def test_an_owner_sends_a_dead_event_again_on_a_phone(make_app, tmp_path, browser, shots):
    url = sqlite_shop(tmp_path, "jobs.db")
    app, _ = build(make_app, url)
    downstream = Downstream()
    Koudai.subscribe(app, "order.placed", downstream)
    number, event_id = give_up(app)
    server = LoopbackServer(app)
    context = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, locale="zh-CN")
    try:
        page = context.new_page()
        staff_login(page, server.url, "owner@shop.cn", PASSWORD)
        warning = page.locator("#dead-events-warning a")
        expect(warning).to_have_text("1 条后台事件重试用尽：请查看“后台任务”。")
        warning.click()
        page.wait_for_url("**/shop-admin/jobs")
        row = page.locator(f'#dead-events tr[data-event="{event_id}"]')
        expect(row.locator(".kd-error")).to_contain_text("ERP at 10.0.0.9 refused the connection")
        assert page.locator("#count-dead").inner_text() == "1"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shots(page, "dead-event")

        downstream.down = False
        row.get_by_role("button", name="重新发送").click()
        page.wait_for_url("**/shop-admin/jobs")
        expect(page.locator("#dead-events tr[data-event]")).to_have_count(0)
        assert page.locator("#count-dead").inner_text() == "0"
        shots(page, "sent-again")
        assert downstream.handled == [number]
    finally:
        context.close()
        server.stop()
