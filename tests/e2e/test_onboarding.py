"""A new owner sets the shop up on a phone, against every sandbox, and opens it.

Profile and theme; the WeChat Official Account, WeChat Pay and Alipay keys, each first with a
wrong key (refused in plain words, nothing saved) and then the right ones (checked live and
saved); a Taobao shop authorized on the sandbox's page and its catalog imported; then the
shop, which showed buyers "coming soon", opens.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect
from sqlalchemy import func, select

from koudai_flask.connectors.sandbox.alipay import AlipaySandbox
from koudai_flask.connectors.sandbox.alipay import SandboxKeys as AlipayKeys
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.sandbox.wechat import WechatSandbox
from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer, WechatPaySandbox
from koudai_flask.extension import get_state
from koudai_flask.models import MerchantCredential, Product
from koudai_flask.services import staff
from tests.e2e.conftest import PHONE, PHONE_UA, sqlite_shop, staff_login
from tests.test_admin import PASSWORD
from tests.test_onboarding import other_rsa_key


def fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def check_keys(page: Any, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        page.locator(f"[name={name}]").fill(value)
    page.locator("#check-keys").click()


def test_a_new_owner_sets_up_and_opens_the_shop(make_app, tmp_path, browser, shots):
    url = sqlite_shop(tmp_path, "onboarding.db")
    app = make_app(url, KOUDAI_SHOP_INITIALLY_OPEN=False)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
    wechat = WechatSandbox(secret="0123456789abcdef0123456789abcdef")
    wechatpay = WechatPaySandbox()
    alipay = AlipaySandbox(AlipayKeys.generate()).start()
    taobao = TaobaoSandbox()
    taobao.seed_demo()
    server = LoopbackServer(app)
    wrong_key = other_rsa_key()
    owner = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, locale="zh-CN")
    buyer = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, locale="zh-CN")
    try:
        shopper = buyer.new_page()
        answer = shopper.goto(f"{server.url}/shop/")
        assert answer is not None and answer.status == 503
        expect(shopper.locator("#coming-soon")).to_be_visible()
        shots(shopper, "buyer-coming-soon")

        page = owner.new_page()
        staff_login(page, server.url, "owner@shop.cn", PASSWORD)
        page.locator('.kd-menu a[href$="/shop-admin/onboarding"]').click()
        page.wait_for_url("**/shop-admin/onboarding")
        expect(page.locator("#steps li")).to_have_count(6)
        assert page.locator('#steps li[data-state="done"]').count() == 0
        assert page.locator("#door span").get_attribute("data-open") == "no"
        fits(page)
        shots(page, "steps")

        # 1. Profile and theme.
        page.locator('#steps li[data-step="profile"] a').click()
        page.fill("input[name=name]", "山茶小铺")
        page.locator("input[name=primary_color]").fill("#1a7f5a")
        fits(page)
        page.locator("#save-profile").click()
        page.wait_for_url("**/shop-admin/onboarding")
        assert page.locator('#steps li[data-step="profile"]').get_attribute("data-state") == "done"

        # 2. WeChat Official Account: a wrong AppSecret, then the right one.
        page.locator('#steps li[data-step="wechat"] a').click()
        wechat_fields = {"appid": wechat.api.appid, "api_url": wechat.url}
        check_keys(page, {**wechat_fields, "secret": "f" * 32})
        expect(page.locator("#form-error")).to_have_attribute("data-problem", "wechat_refused")
        assert "40125" in page.locator("#form-error").inner_text()
        assert page.locator("[name=appid]").input_value() == wechat.api.appid  # kept, typed
        fits(page)
        shots(page, "wechat-refused")
        check_keys(page, {"secret": wechat.api.secret})
        page.wait_for_url("**/shop-admin/onboarding")
        assert page.locator('#steps li[data-step="wechat"]').get_attribute("data-state") == "done"

        # 3. WeChat Pay: a merchant private key that is not the one WeChat Pay knows.
        page.locator('#steps li[data-step="wechatpay"] a').click()
        k = wechatpay.keys
        pay_fields = {
            "mchid": k.mchid,
            "appid": k.appid,
            "apiv3_key": k.apiv3_key,
            "merchant_serial_no": k.merchant_serial_no,
            "platform_key_id": k.platform_serial,
            "platform_public_key": k.platform_public_key_pem,
            "gateway_url": wechatpay.url,
        }
        check_keys(page, {**pay_fields, "merchant_private_key": wrong_key})
        expect(page.locator("#form-error")).to_have_attribute("data-problem", "wechatpay_sign")
        fits(page)
        shots(page, "wechatpay-refused")
        check_keys(
            page,
            {"apiv3_key": k.apiv3_key, "merchant_private_key": k.merchant_private_key_pem},
        )
        page.wait_for_url("**/shop-admin/onboarding")
        assert page.locator('#steps li[data-step="wechatpay"]').get_attribute("data-state") == (
            "done"
        )

        # 4. Alipay: the app's own public key pasted where Alipay's belongs.
        page.locator('#steps li[data-step="alipay"] a').click()
        a = alipay.keys
        ali_fields = {
            "app_id": a.app_id,
            "app_private_key": a.app_private_key,
            "gateway_url": alipay.url,
            "seller_id": a.seller_id,
        }
        check_keys(page, {**ali_fields, "alipay_public_key": a.app_public_key})
        expect(page.locator("#form-error")).to_have_attribute("data-problem", "alipay_verify")
        fits(page)
        shots(page, "alipay-refused")
        check_keys(
            page, {"app_private_key": a.app_private_key, "alipay_public_key": a.alipay_public_key}
        )
        page.wait_for_url("**/shop-admin/onboarding")
        assert page.locator('#steps li[data-step="alipay"]').get_attribute("data-state") == "done"
        shots(page, "keys-done")

        # 5. Taobao: link on the sandbox's authorize page, back to the wizard, import.
        page.locator('#steps li[data-step="taobao"] a').click()
        page.fill("#taobao-form input[name=name]", "tb-main")
        for name, value in taobao.settings_for_client().items():
            if name == "sign_method":
                page.locator("#taobao-form select[name=sign_method]").select_option(value)
            else:
                page.locator(f"#taobao-form [name={name}]").fill(value)
        page.locator("#link-taobao").click()
        page.wait_for_url(f"{taobao.url}/authorize**")
        shots(page, "taobao-authorize")
        page.locator("button[type=submit]").click()
        page.wait_for_url("**/shop-admin/onboarding/taobao")
        shop = page.locator('#taobao-shops li[data-channel="tb-main"]')
        assert shop.get_attribute("data-linked") == "yes"
        shop.locator(".kd-import").click()
        page.wait_for_url("**/shop-admin/onboarding/taobao")
        expect(page.locator('#taobao-shops li[data-channel="tb-main"]')).to_have_attribute(
            "data-import", "done"
        )
        fits(page)
        shots(page, "taobao-imported")

        # 6. Open the shop: buyers get in.
        page.goto(f"{server.url}/shop-admin/onboarding/open")
        assert page.locator('#summary li[data-state="done"]').count() == 5
        page.locator("#open-shop").click()
        page.wait_for_url("**/shop-admin/onboarding/open")
        assert page.locator("#door span").get_attribute("data-open") == "yes"
        fits(page)
        shots(page, "opened")
        answer = shopper.goto(f"{server.url}/shop/")
        assert answer is not None and answer.status == 200
        assert "山茶小铺" in shopper.title()
        shots(shopper, "buyer-shop-open")
    finally:
        owner.close()
        buyer.close()
        server.stop()
        for sandbox in (wechat, wechatpay, alipay, taobao):
            sandbox.stop()
    with app.app_context():
        session = get_state().session
        saved = set(session.scalars(select(MerchantCredential.setting)))
        products = session.scalar(select(func.count(Product.id)))
    assert saved == {"KOUDAI_WECHAT", "KOUDAI_WECHATPAY", "KOUDAI_ALIPAY"}
    assert products == len(taobao.state.items)
    assert app.config["KOUDAI_WECHATPAY"]["mchid"] == wechatpay.keys.mchid
