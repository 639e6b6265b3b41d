"""The set-up wizard: keys checked live against the sandboxes, sealed, laid over config;
progress kept per step; the Taobao link and import; the shop's door."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.connectors.sandbox.alipay import AlipaySandbox
from koudai_flask.connectors.sandbox.alipay import SandboxKeys as AlipayKeys
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.sandbox.wechat import WechatSandbox
from koudai_flask.connectors.sandbox.wechatpay import WechatPaySandbox
from koudai_flask.models import AuditEntry, MerchantCredential, OnboardingStep, Product
from koudai_flask.payments import enabled
from koudai_flask.services import credential_checks, onboarding, staff, theme
from koudai_flask.services import merchant_credentials as keys
from tests.test_admin import PASSWORD, build, login
from tests.test_admin_channels import authorize_on_sandbox

ADMIN = "/shop-admin"
FLASH = re.compile(r'<p class="kd-flash kd-flash-(\w+)">(.*?)</p>', re.S)


def flashes(page: str) -> list[tuple[str, str]]:
    return [(kind, html.unescape(text)) for kind, text in FLASH.findall(page)]


def element(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert found is not None, element_id
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


def attribute(page: str, element_id: str, name: str) -> str:
    found = re.search(rf'<[^>]*id="{element_id}"[^>]*>', page)
    assert found is not None, element_id
    value = re.search(rf'{name}="([^"]*)"', found.group(0))
    assert value is not None, name
    return html.unescape(value.group(1))


def step_states(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-step="(\w+)" data-state="(\w+)"', page))


def post(client: Any, path: str, **data: str) -> Any:
    return client.post(ADMIN + path, data={"csrf_token": client.csrf, **data})


def english_owner(app: Flask) -> Any:
    client = login(app, "owner")
    client.get(f"{ADMIN}/?lang=en")
    return client


def other_rsa_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_of(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def wechat() -> Iterator[WechatSandbox]:
    with WechatSandbox(appid="wx0nb0ard1ng00001", secret="a" * 32) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def wechatpay() -> Iterator[WechatPaySandbox]:
    with WechatPaySandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def alipay() -> Iterator[AlipaySandbox]:
    with AlipaySandbox(AlipayKeys.generate()) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def spare_key() -> str:
    return other_rsa_key()


def wechatpay_form(sandbox: WechatPaySandbox, **changes: str) -> dict[str, str]:
    k = sandbox.keys
    form = {
        "mchid": k.mchid,
        "appid": k.appid,
        "apiv3_key": k.apiv3_key,
        "merchant_serial_no": k.merchant_serial_no,
        "merchant_private_key": k.merchant_private_key_pem,
        "platform_key_id": k.platform_serial,
        "platform_public_key": k.platform_public_key_pem,
        "gateway_url": sandbox.url,
    }
    return {**form, **changes}


def alipay_form(sandbox: AlipaySandbox, **changes: str) -> dict[str, str]:
    k = sandbox.keys
    form = {
        "app_id": k.app_id,
        "app_private_key": k.app_private_key,
        "alipay_public_key": k.alipay_public_key,
        "gateway_url": sandbox.url,
        "seller_id": k.seller_id,
    }
    return {**form, **changes}


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    """The back office with a member of every role; no app context is held, so each test
    client is its own visitor."""
    app, _ = build(make_app, database_url)
    return app


def credential_rows(app: Flask) -> dict[str, MerchantCredential]:
    with app.app_context():
        session = keys.current_session()
        return {row.setting: row for row in session.scalars(select(MerchantCredential))}


def audit_of(app: Flask, *conditions: Any) -> list[AuditEntry]:
    with app.app_context():
        session = keys.current_session()
        return list(session.scalars(select(AuditEntry).where(*conditions).order_by(AuditEntry.id)))


# -- WeChat Official Account ---------------------------------------------------------------


def test_wechat_keys_checked_live_saved_sealed_and_used_at_once(shop, wechat):
    client = english_owner(shop)
    assert shop.config["KOUDAI_WECHAT"] is None
    response = post(
        client,
        "/onboarding/keys/wechat",
        appid=wechat.api.appid,
        secret="b" * 32,
        api_url=wechat.url,
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert attribute(page, "form-error", "data-problem") == "wechat_refused"
    assert element(page, "form-error") == (
        "WeChat refused the AppID or AppSecret (40125): copy both again from the Official "
        "Account platform (Settings and development > Basic configuration)."
    )
    assert "b" * 32 not in page
    assert credential_rows(shop) == {}
    assert shop.config["KOUDAI_WECHAT"] is None

    response = post(
        client,
        "/onboarding/keys/wechat",
        appid=wechat.api.appid,
        secret=wechat.api.secret,
        api_url=wechat.url,
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert flashes(page) == [
        ("success", "WeChat issued an access token: the AppID and AppSecret work.")
    ]
    assert step_states(page)["wechat"] == "done"
    (row,) = credential_rows(shop).values()
    assert row.values == {"appid": wechat.api.appid, "api_url": wechat.url}
    assert wechat.api.secret not in row.sealed
    assert keys.unseal(row.sealed, "test-secret") == {"secret": wechat.api.secret}
    # In use without a restart, and never shown back.
    assert shop.config["KOUDAI_WECHAT"]["secret"] == wechat.api.secret
    assert shop.config["KOUDAI_WECHAT"]["appid"] == wechat.api.appid
    page = client.get(f"{ADMIN}/onboarding/keys/wechat").get_data(as_text=True)
    assert wechat.api.secret not in page
    assert attribute(page, "in-use", "data-source") == "saved"
    assert element(page, "last-check").startswith("WeChat issued an access token")
    audit = audit_of(shop, AuditEntry.action == "onboarding.keys_saved")
    assert [(a.object_id, a.after) for a in audit] == [
        ("KOUDAI_WECHAT", {"appid": wechat.api.appid, "api_url": wechat.url, "secret": "set"})
    ]


def test_wechat_problems_in_plain_words(shop, wechat):
    client = english_owner(shop)
    response = post(client, "/onboarding/keys/wechat", appid="", secret="", api_url="ftp://x")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    errors = dict(re.findall(r'data-error="(\w+)">([^<]*)<', page))
    assert errors == {
        "appid": "AppID is required.",
        "api_url": "API address must be an address starting with https:// or http://.",
        "secret": "AppSecret is required.",
    }
    response = post(
        client, "/onboarding/keys/wechat", appid="wxnobody", secret="x" * 32, api_url=wechat.url
    )
    assert element(response.get_data(as_text=True), "form-error").startswith(
        "WeChat refused the AppID or AppSecret (40013)"
    )
    # Nothing answers on a port that was just freed.
    with WechatSandbox() as gone:
        dead = gone.url
    response = post(client, "/onboarding/keys/wechat", appid="wxa", secret="s", api_url=dead)
    assert element(response.get_data(as_text=True), "form-error") == (
        f"Could not reach WeChat at {dead}: check the address and that this server can "
        "connect to it."
    )
    with shop.app_context():
        status = onboarding.status("wechat")
    assert (status.state, status.problem, status.draft) == (
        "failed",
        "unreachable",
        {"appid": "wxa", "api_url": dead},
    )
    assert credential_rows(shop) == {}


# -- WeChat Pay ------------------------------------------------------------------------------


def test_wechatpay_signed_query_proves_the_keys(shop, wechatpay, spare_key):
    client = english_owner(shop)
    cases = {
        "wechatpay_sign": wechatpay_form(wechatpay, merchant_private_key=spare_key),
        "wechatpay_platform": wechatpay_form(wechatpay, platform_public_key=public_of(spare_key)),
        "pem_private": wechatpay_form(wechatpay, merchant_private_key="not a key"),
        "apiv3_length": wechatpay_form(wechatpay, apiv3_key="short"),
    }
    texts = {}
    for problem, form in cases.items():
        response = post(client, "/onboarding/keys/wechatpay", **form)
        assert response.status_code == 400, problem
        page = response.get_data(as_text=True)
        assert attribute(page, "form-error", "data-problem") == problem
        texts[problem] = element(page, "form-error")
        assert wechatpay.keys.apiv3_key not in page
    assert texts["wechatpay_sign"] == (
        "WeChat Pay did not accept the signature: check the merchant serial number and private "
        "key (and the merchant ID)."
    )
    assert texts["pem_private"].startswith("Merchant private key is not a PEM RSA key")
    assert texts["apiv3_length"].startswith(
        "The APIv3 key must be exactly 32 characters (this one has 5)"
    )
    assert credential_rows(shop) == {}
    assert "wechatpay" not in enabled(shop)

    response = post(client, "/onboarding/keys/wechatpay", **wechatpay_form(wechatpay))
    assert response.status_code == 303
    with shop.app_context():
        assert onboarding.status("wechatpay").state == "done"
    provider = enabled(shop)["wechatpay"]
    assert provider.mchid == wechatpay.keys.mchid
    # The provider really talks to the sandbox with the saved keys.
    with pytest.raises(Exception) as refused:
        provider.query("KD0000000000NONE")
    assert getattr(refused.value, "code", None) == "ORDER_NOT_EXIST"

    # Changing only the address keeps the saved secrets (empty fields keep them).
    form = wechatpay_form(wechatpay, apiv3_key="", merchant_private_key="")
    response = post(client, "/onboarding/keys/wechatpay", **form)
    assert response.status_code == 303
    assert shop.config["KOUDAI_WECHATPAY"]["apiv3_key"] == wechatpay.keys.apiv3_key


# -- Alipay ----------------------------------------------------------------------------------


def test_alipay_signed_trade_query_proves_the_keys(shop, alipay, spare_key):
    client = english_owner(shop)
    for problem, form in {
        "alipay_sign": alipay_form(alipay, app_private_key=spare_key),
        "alipay_verify": alipay_form(alipay, alipay_public_key=public_of(spare_key)),
        "alipay_app_id": alipay_form(alipay, app_id="2021000000000000"),
        "pem_public": alipay_form(alipay, alipay_public_key="-----BEGIN PUBLIC KEY-----\nxx"),
    }.items():
        response = post(client, "/onboarding/keys/alipay", **form)
        assert response.status_code == 400, problem
        assert attribute(response.get_data(as_text=True), "form-error", "data-problem") == problem
    assert credential_rows(shop) == {}
    # Keys pasted as open.alipay.com shows them: one bare Base64 line each.
    bare = {
        name: "".join(line for line in pem.splitlines() if not line.startswith("-----"))
        for name, pem in (
            ("app_private_key", alipay.keys.app_private_key),
            ("alipay_public_key", alipay.keys.alipay_public_key),
        )
    }
    response = post(client, "/onboarding/keys/alipay", **alipay_form(alipay, **bare))
    assert response.status_code == 303
    page = client.get(f"{ADMIN}/onboarding").get_data(as_text=True)
    assert flashes(page) == [
        (
            "success",
            "Alipay accepted a signed alipay.trade.query and its answer verified with the "
            "Alipay public key: the AppID and both keys work.",
        )
    ]
    assert enabled(shop)["alipay"].app_id == alipay.keys.app_id


# -- precedence, other processes, SECRET_KEY -------------------------------------------------


def test_saved_keys_win_over_config_and_forgetting_brings_config_back(
    make_app, database_url, wechat
):
    config = {"appid": "wxconfig", "secret": "from-config", "token": "srvtoken1"}
    config["api_url"] = wechat.url
    app = make_app(database_url, KOUDAI_WECHAT=config)
    other = make_app(database_url, KOUDAI_WECHAT=config)  # a second process on the same DB
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
    client = english_owner(app)
    with other.app_context():
        assert other.config["KOUDAI_WECHAT"]["appid"] == "wxconfig"
    response = post(
        client,
        "/onboarding/keys/wechat",
        appid=wechat.api.appid,
        secret=wechat.api.secret,
        api_url=wechat.url,
    )
    assert response.status_code == 303
    # The saved keys win for what they hold; the rest of the config stays.
    assert app.config["KOUDAI_WECHAT"] == {
        "appid": wechat.api.appid,
        "secret": wechat.api.secret,
        "api_url": wechat.url,
        "token": "srvtoken1",
    }
    with other.app_context():  # looked at recently: still the config until the interval ends
        assert other.config["KOUDAI_WECHAT"]["appid"] == "wxconfig"
    other.extensions["koudai_merchant_credentials"].next_look = 0.0  # the interval has passed
    with other.app_context():
        assert other.config["KOUDAI_WECHAT"]["appid"] == wechat.api.appid
    page = client.get(f"{ADMIN}/onboarding/keys/wechat").get_data(as_text=True)
    assert "from-config" not in page and wechat.api.secret not in page

    response = post(client, "/onboarding/keys/wechat/forget")
    assert response.status_code == 303
    assert app.config["KOUDAI_WECHAT"] == config
    page = client.get(f"{ADMIN}/onboarding/keys/wechat").get_data(as_text=True)
    assert attribute(page, "in-use", "data-source") == "config"
    # "Check the keys in use" checks the config's keys: the sandbox refuses them.
    response = post(client, "/onboarding/keys/wechat/recheck")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert flashes(page) == [
        (
            "error",
            "WeChat refused the AppID or AppSecret (40013): copy both again from the Official "
            "Account platform (Settings and development > Basic configuration).",
        )
    ]
    with app.app_context():
        assert onboarding.status("wechat").state == "failed"


def test_a_new_secret_key_makes_saved_keys_unusable_not_fatal(make_app, database_url, wechat):
    app = make_app(database_url)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        onboarding.check_keys(
            "staff:owner@shop.cn",
            "wechat",
            {"appid": wechat.api.appid, "secret": wechat.api.secret, "api_url": wechat.url},
        )
        assert app.config["KOUDAI_WECHAT"]["secret"] == wechat.api.secret
    rotated = make_app(database_url, SECRET_KEY="another-secret")
    with rotated.app_context():
        assert rotated.config["KOUDAI_WECHAT"] is None
        assert keys.unusable("KOUDAI_WECHAT")
        finding = onboarding.recheck("staff:owner@shop.cn", "wechat")
        assert (finding.ok, finding.code) == (False, "unusable")


# -- the wizard's pages ----------------------------------------------------------------------


def test_progress_is_kept_per_step_and_skips(shop):
    client = english_owner(shop)
    page = client.get(f"{ADMIN}/onboarding").get_data(as_text=True)
    assert step_states(page) == {
        "profile": "todo",
        "wechat": "todo",
        "wechatpay": "todo",
        "alipay": "todo",
        "taobao": "todo",
        "open": "done",  # KOUDAI_SHOP_INITIALLY_OPEN: an existing shop stays open
    }
    response = post(
        client, "/onboarding/profile", name=" 茶小铺 ", primary_color="#12ab34", logo_url=""
    )
    assert response.status_code == 303
    with shop.app_context():
        assert (theme.current().name, theme.current().primary_color) == ("茶小铺", "#12ab34")
    response = post(client, "/onboarding/profile", name="x", primary_color="red", logo_url="")
    assert response.status_code == 400
    assert (
        element(response.get_data(as_text=True), "form-error")
        == "Write the colour as #rrggbb, such as #c0392b."
    )
    assert post(client, "/onboarding/alipay/skip").status_code == 303
    assert post(client, "/onboarding/profile/skip").status_code == 404
    page = client.get(f"{ADMIN}/onboarding").get_data(as_text=True)
    assert step_states(page) == {
        "profile": "done",
        "wechat": "todo",
        "wechatpay": "todo",
        "alipay": "skipped",
        "taobao": "todo",
        "open": "done",
    }


def test_the_profile_page_keeps_the_return_address(shop):
    client = english_owner(shop)
    address = {
        "return_name": " 茶小铺 售后 ",
        "return_phone": "0571-88886666",
        "return_address": "杭州市西湖区文三路 90 号",
    }
    shop_form = {"name": "茶小铺", "primary_color": "#12ab34", "logo_url": ""}
    response = post(client, "/onboarding/profile", **shop_form, **address)
    assert response.status_code == 303
    with shop.app_context():
        assert theme.current().return_address == {
            "name": "茶小铺 售后",
            "phone": "0571-88886666",
            "address": "杭州市西湖区文三路 90 号",
        }
    page = client.get(f"{ADMIN}/onboarding/profile").get_data(as_text=True)
    assert re.search(r'name="return_phone"[^>]* value="0571-88886666"', page)

    for bad, said in (
        ({**address, "return_phone": ""}, "A return address needs a recipient, a phone and an"),
        ({**address, "return_phone": "call me"}, "Write the return address's phone with digits"),
    ):
        response = post(client, "/onboarding/profile", **shop_form, **bad)
        assert response.status_code == 400
        assert element(response.get_data(as_text=True), "form-error").startswith(said)
    with shop.app_context():  # refused: the address saved before stands
        assert theme.current().return_address["phone"] == "0571-88886666"

    empty = {key: "" for key in address}
    response = post(client, "/onboarding/profile", **shop_form, **empty)
    assert response.status_code == 303
    with shop.app_context():
        assert theme.current().return_address is None


def test_permissions_scope_and_csrf(shop, wechat):
    for role in ("customer_service", "warehouse", "marketing", "viewer"):
        client = login(shop, role)
        assert client.get(f"{ADMIN}/onboarding").status_code == 403, role
        assert post(client, "/onboarding/open").status_code == 403, role
    with shop.app_context():
        staff.grant(
            "staff:scoped@shop.cn",
            "admin",
            channels=["tb-a"],
            granted_by="staff:owner@shop.cn",
            email="scoped@shop.cn",
            password=PASSWORD,
        )
    scoped = login(shop, "scoped")
    assert scoped.get(f"{ADMIN}/onboarding").status_code == 403
    assert shop.test_client().get(f"{ADMIN}/onboarding").status_code == 302  # to the login
    owner = login(shop, "owner")
    form = {"appid": wechat.api.appid, "secret": wechat.api.secret, "api_url": wechat.url}
    assert owner.post(f"{ADMIN}/onboarding/keys/wechat", data=form).status_code == 400
    assert owner.post(f"{ADMIN}/onboarding/close").status_code == 400
    assert credential_rows(shop) == {}
    with shop.test_request_context():
        assert onboarding.shop_is_open() is True
        count = keys.current_session().scalar(select(func.count(OnboardingStep.id)))
    assert count == 0


def test_a_closed_shop_shows_buyers_coming_soon_and_staff_the_shop(shop):
    buyer = shop.test_client()
    assert buyer.get("/shop/").status_code == 200
    owner = english_owner(shop)
    response = post(owner, "/onboarding/close")
    assert response.status_code == 303
    page = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-open="no"' in page
    response = buyer.get("/shop/products")
    assert response.status_code == 503
    assert 'id="coming-soon"' in response.get_data(as_text=True)
    assert owner.get("/shop/products").status_code == 200  # staff preview
    assert post(owner, "/onboarding/open").status_code == 303
    assert buyer.get("/shop/products").status_code == 200
    actions = [a.action for a in audit_of(shop, AuditEntry.object_type == "shop")]
    assert actions == ["shop.closed", "shop.opened"]


def test_a_new_shop_starts_closed_when_configured(make_app, database_url):
    app = make_app(database_url, KOUDAI_SHOP_INITIALLY_OPEN=False)
    client = app.test_client()
    response = client.get("/shop/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3600"


def test_linking_taobao_and_importing_from_the_wizard(shop):
    sandbox = TaobaoSandbox()
    try:
        sandbox.seed_demo()
        client = english_owner(shop)
        settings = sandbox.settings_for_client()
        response = post(client, "/onboarding/taobao", name="tb-wizard", **settings)
        assert response.status_code == 303
        location = response.headers["Location"]
        assert location.startswith(f"{sandbox.oauth_base}/authorize?")
        callback = authorize_on_sandbox(location)
        assert callback.startswith(f"{ADMIN}/onboarding/taobao/tb-wizard/callback?")
        response = client.get(callback)
        assert response.status_code == 303
        assert client.get(callback).status_code == 400  # a state is good for one callback
        page = client.get(f"{ADMIN}/onboarding/taobao").get_data(as_text=True)
        assert 'data-channel="tb-wizard" data-linked="yes" data-import="idle"' in page
        response = post(client, "/onboarding/taobao/tb-wizard/import")
        assert response.status_code == 303
        page = client.get(f"{ADMIN}/onboarding").get_data(as_text=True)
        assert step_states(page)["taobao"] == "done"
        with shop.app_context():
            products = keys.current_session().scalar(select(func.count(Product.id)))
        assert products == 1 + len(sandbox.state.items)  # the Kettle, and every item on sale
    finally:
        sandbox.stop()


def test_messages_name_fields_and_codes(app):
    from flask_babel import force_locale

    finding = credential_checks.Finding(False, "pem_private", {"field": "app_private_key"})
    with force_locale("en"):
        assert credential_checks.describe(finding.code, finding.detail).startswith(
            "App private key is not a PEM RSA key"
        )
    with force_locale("zh"):  # the shop's default language names the field in Chinese too
        assert credential_checks.describe(finding.code, finding.detail).startswith(
            "应用私钥不是 PEM 格式的 RSA 密钥"
        )
    assert credential_checks.describe("nonsense", {}) == ""
    assert credential_checks.armoured("QUJD", "PUBLIC KEY") == (
        "-----BEGIN PUBLIC KEY-----\nQUJD\n-----END PUBLIC KEY-----\n"
    )
