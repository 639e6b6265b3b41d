"""An owner builds a colour × size SKU matrix on a tablet, in the default Chinese."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.models import Sku
from tests.e2e.conftest import sqlite_shop
from tests.test_admin import PASSWORD, build


def test_the_sku_matrix_on_a_tablet_in_chinese(make_app, tmp_path, browser, shots):
    """An owner builds colour × size on a tablet, in the default Chinese, without typing codes."""
    url = sqlite_shop(tmp_path, "tablet.db")
    app, _ = build(make_app, url)
    server = LoopbackServer(app)
    context = browser.new_context(viewport={"width": 768, "height": 1024}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{server.url}/shop-admin/products/new")
        page.fill("input[name=email]", "owner@shop.cn")
        page.fill("input[name=password]", PASSWORD)
        page.locator("button[type=submit]").last.click()
        page.goto(f"{server.url}/shop-admin/products/new")
        page.fill("input[name=title]", "纯棉T恤")
        page.fill("input[name=option-0-name]", "颜色")
        page.fill("input[name=option-0-values]", "红，蓝")
        page.fill("input[name=option-1-name]", "尺码")
        page.fill("input[name=option-1-values]", "S、M")
        page.fill("input[name=prefix]", "tee")
        page.fill("input[name=default_price]", "129.00")
        page.locator("#generate").click()
        expect(page.locator("#sku-matrix tbody tr")).to_have_count(4)
        page.fill("input[name=row-3-price]", "139.50")
        shots(page, "matrix")
        assert page.evaluate("document.documentElement.scrollWidth") <= 768
        page.locator("#save").click()
        page.wait_for_url("**/shop-admin/products/2")
        assert "已保存" in page.locator(".kd-flashes").inner_text()
        shots(page, "saved")
    finally:
        context.close()
        server.stop()
    with app.app_context():
        prices = dict(
            get_state()
            .session.execute(select(Sku.code, Sku.price).where(Sku.product_id == 2))
            .all()
        )
    assert prices == {"TEE-1-S": 12900, "TEE-1-M": 12900, "TEE-2-S": 12900, "TEE-2-M": 13950}
