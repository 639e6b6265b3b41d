"""WeChat Pay API v3: the official vectors, the provider against the sandbox gateway on real
loopback sockets, the notify endpoint's idempotency and refusals, and settings validation."""

from __future__ import annotations

import json
import logging
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urljoin

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from koudai_flask import payments
from koudai_flask.connectors.sandbox import cli as sandbox_cli_module
from koudai_flask.connectors.sandbox.cli import sandbox_cli
from koudai_flask.connectors.sandbox.wechatpay import (
    LoopbackServer,
    SandboxKeys,
    Transaction,
    WechatPayGateway,
    WechatPaySandbox,
)
from koudai_flask.connectors.sandbox.wechatpay.gateway import GatewayError
from koudai_flask.errors import ConfigError, SignatureError, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import Order, OrderEvent, OutboxEvent, Payment, StockMovement
from koudai_flask.payments import PaymentGatewayError, PaymentRequest, PaymentStatus, RefundResult
from koudai_flask.payments.wechatpay import build_provider, crypto, validate_settings
from koudai_flask.payments.wechatpay.provider import WechatPayProvider
from koudai_flask.services import catalog, orders

NOTIFY = "/shop-hooks/wechatpay/notify"
# Nothing listens on port 1: a delivery there fails at once, and stays on loopback.
DEAD_NOTIFY_URL = "http://127.0.0.1:1/shop-hooks/wechatpay/notify"

# -- official vectors ------------------------------------------------------------------------

# The test private key published with the official signature example ("请求参数里带Body参数，
# 如何计算签名", doc 4012365336), as the SDKs' test suites carry it. A test vector, not a secret.
OFFICIAL_MERCHANT_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCm2mb6q8gMKH/3
CNTbpJAIrbqiBiQGEOtjGcBrDYltsGynWgNscqT7WvfzU14FQbYcQUC5T4Wvva7m
i3fIp3OgX8VqMDNA0qebnr38Pe6kqiLyZgFpJPXlSKDyPyqhRbVTbXssvSMQeVKc
dXeVxoNNeoOlNFHgF/P0io6AmAVnz+hN8SiZKuOsth5/zUTLGvtkgxBcQooQrtXh
RcpLT798OyIb9xeJ2HO3xRtMv2+perEzb4gMibI74UBz+2QEbnkubPE+2jU2rRZu
dnNEz/BPOt3Qj/w2V6/G0VumGDh6+UeMU0jv4aupHztWITC4Akn0l7lBCNy3lgl8
VFaJnkIxAgMBAAECggEAYGL8aESB7NwciDWW2UdoWUsa7GxFtSdjAz2mFXGdeTsY
mVh7b9OOkRGM+Qio4LqEHDBp1mMk5E/cUJwy1zw8pGGO5nfvs7u9TT3XnHaefIs4
YvUgTYAneIuLRkXNN5rQU+CD7mVYczTSz0Vgjqo9wa1LjUz7G0xbBmJgTdMEFGJs
eJjy6AbJo0CGIwp6HJbTm4CmOUgXnnDAIbEGTIRImkZFH/rzneIeR7oZ77FVwxr1
CZB2gfRCov/yRPbw8vnryYkmvQ7D/ze3j5097vRg/MoDGBSdoOwcmo75vyofr0AS
zytMjmHYyifqkf5slPropSiJeGf4p/7gtKyF6dE/XQKBgQDVAlJ+4U5ZVGOuDc3+
sAhz8CTzgFNlq9vKuSoFK6hOz2L+cwj+E7NXGkOe2DsHHZNy2Xqxk7caKhPEp1z9
hhpMpyLVMoFt6CKemyoRBWDCQwLLwem9SZF/IAyovBkLiH36P42Jm26gUkNMKC/5
Zhtqxf6RZgRQzbVudJi47vIRCwKBgQDIh0+v27Oo+DM3fhObH4I1NrXpWOEGH7OQ
G1dEsMuFYF4hjGhg0kBEP3w9vVdl2+mRllZKTsx9oqjb8OibPLLIH8xsdbAB0WLf
JvjLu4wl/ILUzN1RI03dWnnv2EnEeQn6c3hizvrJ9wR5U4ue9RPVnQooJ0hZF1PU
uCL5fWK3MwKBgElReU/PAYbh80WP3t3Rfbdaa32dKBeQ5iCLR5lsA4zM+YgX1HqQ
EWTj126vgvHaDkyz6vWAoL/Sx+cirHFfXWIRDX5Q2hgYlQH+6qXdMgbrxeSYpHnQ
/tHBGFpkFELSAnrGsVMyOwvYBO4LzyeLK9i+ufcWJFoj1FVmsMLHDG8tAoGARdbi
iQQCoYG4DMarO2aQ6cmhN6EN1h0qY7EyBqlwaIZ0okiNfdMcMOjPc41DKCWcRmlO
qlihXcxN9TQFPzO3rH1urAOdBjUPs1qWYhZyrDQyuLyVBBJApyxAtajloDjrob+f
mQIvVDHk7ACN6xG+E7K6+9salnTKbJapD618uQMCgYBNy6XUvzLkP/A1U/UZdtcx
l8GwU/dturLxz4CyGbqDw4ubaYY2e13lnqHUqQgPtiSyH51nq3tdo8G0YAJdfkSv
KvnfslW91fyEBUKnkdW1o3/1UFU/wprZ7ixVL/F42A4xDu7OFE8EnweJOZ0jWceE
OdhCkaIGBCfRnlECRK8UyQ==
-----END PRIVATE KEY-----
"""
OFFICIAL_BODY = (
    '{"appid":"wxd678efh567hg6787","mchid":"1900007291",'
    '"description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018",'
    '"notify_url":"https://www.weixin.qq.com/wxpay/pay.php",'
    '"amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}'
).encode()
OFFICIAL_SIGNATURE = (
    "jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKYhFGvt7iqYpDSTQkp7Uq1"
    "sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/"
    "BnjXAOP3/sPObg6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4Ul"
    "qfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW3RGUNE0t4v01A=="
)
# wechatpay-go core/notify/notify_test.go::TestHandler_ParseNotifyRequest
GO_CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIDVzCCAj+gAwIBAgIJANfOWdH1ItcBMA0GCSqGSIb3DQEBCwUAMEIxCzAJBgNV
BAYTAlhYMRUwEwYDVQQHDAxEZWZhdWx0IENpdHkxHDAaBgNVBAoME0RlZmF1bHQg
Q29tcGFueSBMdGQwHhcNMjEwNDI3MDg1NTIzWhcNMzEwNDI1MDg1NTIzWjBCMQsw
CQYDVQQGEwJYWDEVMBMGA1UEBwwMRGVmYXVsdCBDaXR5MRwwGgYDVQQKDBNEZWZh
dWx0IENvbXBhbnkgTHRkMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
2VCTd91fnUn73Xy9DLvt/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXag
HQ4vGeZN0yqm++rDsGK+U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOm
DeJf2vg6byms9RUipiq4SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B83
4uxl1zNLYQCrkdBzb8oUxwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGf
y8wus7hwKz6clt3Whmmda7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtk
aSef4FdEEgEXJiw0VAJT8wIDAQABo1AwTjAdBgNVHQ4EFgQUT1c7nd/SUO76HSoZ
umNUJv1R5PwwHwYDVR0jBBgwFoAUT1c7nd/SUO76HSoZumNUJv1R5PwwDAYDVR0T
BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAfTjxKRQMzNB/U6ZoCUS+BSNfa2Oh
0plMN6ZuzwiVVZwg1jywvv5yv04koS7Pd4i9E4gt9ZBUQXlpq+A3oOCEEHNRR6b2
kyazGRM7s0OP5X21WrbpSmKmU6K7hkfx30yYs08LVs/Q8DIhvaj1FCFeJzUCzYn/
fHMq4tsbKO0dKAeydPM/nrUZBmaYQVKMVOORGLFjFKVO7JV6Kq/R86ouhjEPgJOe
2xulNBUcjicqtZlBdEh/PWCYP2SpGVDclKm8jeo175T3EVAkdKzzmfpxtMmnMlmq
cTJOU9TxuGvNASMtjj7pYIerTx+xgZDXEVBWFW9PjJ0TV06tCRsgSHItgg==
-----END CERTIFICATE-----
"""
GO_NOTIFY_BODY = (
    '{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","create_time":"2021-06-24T16:37:26+08:00",'
    '"resource_type":"encrypt-resource","event_type":"PAYSCORE.USER_OPEN_SERVICE",'
    '"summary":"签约成功","resource":{"original_type":"payscore","algorithm":"AEAD_AES_256_GCM",'
    '"ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWTtTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdD'
    "YMkRVSDaZL3iZttevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBokNebthah3o1H76qSlO9NkDjp9bzmKL"
    'EYYH9TEklFUpsvPqOTOcgSLgh21YJXYR7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PXpnQ==",'
    '"associated_data":"payscore","nonce":"Kj7QIyUiYx1q"}}'
).encode()
GO_NOTIFY_HEADERS = {
    "Wechatpay-Nonce": "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz",
    "Wechatpay-Timestamp": "1624523846",
    "Wechatpay-Serial": "D7CE59D1F522D701",
    "Wechatpay-Signature": (
        "tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXF"
        "lbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9Fj"
        "DR//rxELLwXvV1VEA1IBLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvR"
        "GrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY406ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q=="
    ),
    # The Go test's headers leave this out; the gateway always sends it (PROTOCOLS §2.3).
    "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
}
GO_PLAINTEXT = (
    b'{"mchid":"1234567890","appid":"054aa7d7a2a54ab5898df65bd96f001c",'
    b'"create_time":"2020-06-30T12:12:00+08:00","out_contract_code":"21640bdbd08e473e828f3206a2741c6e"}'
)


def test_request_signature_matches_the_official_vector() -> None:
    key = crypto.load_private_key(OFFICIAL_MERCHANT_KEY)
    message = crypto.request_message(
        "POST",
        "/v3/pay/transactions/jsapi",
        "1554208460",
        "593BEC0C930BF1AFEB40B4A08C8FB242",
        OFFICIAL_BODY,
    )
    assert message == (
        b"POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n"
        + OFFICIAL_BODY
        + b"\n"
    )
    assert crypto.rsa_sign(key, message) == OFFICIAL_SIGNATURE
    assert crypto.authorization(
        mchid="1900007291",
        serial_no="408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB",
        key=key,
        method="POST",
        canonical_url="/v3/pay/transactions/jsapi",
        body=OFFICIAL_BODY,
        timestamp="1554208460",
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    ) == (
        'WECHATPAY2-SHA256-RSA2048 mchid="1900007291",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
        f'signature="{OFFICIAL_SIGNATURE}",timestamp="1554208460",'
        'serial_no="408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"'
    )
    # A GET signs the query string and an empty body line.
    assert (
        crypto.request_message(
            "GET", "/v3/pay/transactions/out-trade-no/X1?mchid=1900007291", "1554208460", "N", b""
        )
        == b"GET\n/v3/pay/transactions/out-trade-no/X1?mchid=1900007291\n1554208460\nN\n\n"
    )


def test_jsapi_pay_sign_matches_the_published_example() -> None:
    # The "调起支付签名" example (doc 4012365341) with the same published test key.
    key = crypto.load_private_key(OFFICIAL_MERCHANT_KEY)
    assert crypto.pay_sign(
        key,
        "wx2421b1c4370ec43b",
        "1554208460",
        "593BEC0C930BF1AFEB40B4A08C8FB242",
        "prepay_id=wx201410272009395522657a690389285100",
    ) == (
        "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uibcLVtvFLdGLpmoYO9FV6lBBsT"
        "Ajuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfRW4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPV"
        "KjGwuCXzuXSJes0UcILgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bdu1ca"
        "HTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBxKJ+qk5N61J7caYoepHFaxw=="
    )


def test_notify_signature_and_resource_match_the_official_go_vector() -> None:
    keys = {"D7CE59D1F522D701": crypto.load_public_key(GO_CERTIFICATE)}
    crypto.verify_wechatpay_signature(GO_NOTIFY_HEADERS, GO_NOTIFY_BODY, keys, now=1624523846)
    resource = json.loads(GO_NOTIFY_BODY)["resource"]
    # The vector's APIv3 key is 16 bytes (AES-128-GCM); only the settings insist on 32.
    assert (
        crypto.decrypt_resource(
            b"testMchAPIv3Key0",
            resource["nonce"],
            resource["ciphertext"],
            resource["associated_data"],
        )
        == GO_PLAINTEXT
    )
    with pytest.raises(SignatureError, match="^WeChat Pay signature does not verify$"):
        crypto.verify_wechatpay_signature(
            GO_NOTIFY_HEADERS,
            GO_NOTIFY_BODY.replace(b"payscore", b"payScore"),
            keys,
            now=1624523846,
        )
    with pytest.raises(SignatureError, match="^Wechatpay-Timestamp '1624523846' is not within"):
        crypto.verify_wechatpay_signature(
            GO_NOTIFY_HEADERS, GO_NOTIFY_BODY, keys, now=1624523846 + 301
        )


def test_aes_gcm_matches_the_official_vector() -> None:
    args = ("wCq51qZv4Yfg", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC")
    key = b"testAPIv3Key0000"
    assert crypto.decrypt_resource(key, *args, "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8") == b"Hello World"
    with pytest.raises(SignatureError, match="does not decrypt with the configured apiv3_key"):
        crypto.decrypt_resource(key, *args, "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR9")


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> SandboxKeys:
    return SandboxKeys.generate()


@pytest.fixture
def sandbox(keys: SandboxKeys) -> Iterator[WechatPaySandbox]:
    server = WechatPaySandbox(keys, notify_interval=0.05)
    yield server
    server.stop()


@pytest.fixture
def shop(make_app: Callable[..., Flask], database_url: str, sandbox: WechatPaySandbox) -> Any:
    """A shop paying through the sandbox, with 10 white shirts at ¥129.00."""
    app = make_app(database_url, KOUDAI_WECHATPAY=sandbox.settings_for_client())
    with app.app_context():
        catalog.create_product(
            title="Oxford shirt",
            skus=[{"code": "SHIRT-W", "price": 12900, "stock": 10}],
        )
        yield app
    provider_of(app).client.session.close()


def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'settings.db'}"


def provider_of(app: Flask) -> WechatPayProvider:
    provider = build_provider(app)
    assert provider is not None
    return provider


def place() -> Order:
    return orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])


def h5_request(order: Order, notify_url: str, return_url: str = "http://127.0.0.1/back") -> Any:
    return PaymentRequest(
        order_number=order.number,
        amount=order.total,
        description="Oxford shirt",
        notify_url=notify_url,
        return_url=return_url,
    )


def paid_in_sandbox(sandbox: WechatPaySandbox, app: Flask, order: Order) -> Transaction:
    """The buyer paid at the sandbox, but its notifies went nowhere."""
    provider_of(app).start(h5_request(order, DEAD_NOTIFY_URL))
    tx = sandbox.gateway.transactions[order.number]
    sandbox.gateway.pay(tx.prepay_id, tx.token)
    sandbox.gateway.notifier.wait()
    return tx


def h5_transaction(sandbox: WechatPaySandbox, number: str, notify_url: str) -> Transaction:
    """An H5 order created at the sandbox directly, as a correctly signed call would."""
    return sandbox.gateway.create(
        "MWEB",
        {
            "appid": sandbox.keys.appid,
            "mchid": sandbox.keys.mchid,
            "description": "Oxford shirt",
            "out_trade_no": number,
            "notify_url": notify_url,
            "amount": {"total": 12900, "currency": "CNY"},
            "scene_info": {"payer_client_ip": "127.0.0.1", "h5_info": {"type": "Wap"}},
        },
    )


def counts(app: Flask) -> dict[str, int]:
    session = get_state(app).session
    session.expire_all()
    models = (Payment, Order, OrderEvent, StockMovement, OutboxEvent)
    return {m.__name__: session.scalar(select(func.count()).select_from(m)) for m in models}


def status_of(app: Flask, number: str) -> str:
    session = get_state(app).session
    session.expire_all()
    return session.scalar(select(Order.status).where(Order.number == number))


# -- the provider against the sandbox --------------------------------------------------------


def test_h5_payment_from_cashier_page_to_notify_then_query_close_refund(
    shop: Flask, sandbox: WechatPaySandbox
) -> None:
    app_server = LoopbackServer(shop)
    try:
        provider = provider_of(shop)
        order = place()
        return_url = f"{app_server.url}/shop/orders/{order.number}"
        action = provider.start(h5_request(order, app_server.url + NOTIFY, return_url))
        tx = sandbox.gateway.transactions[order.number]
        assert (action.kind, tx.trade_type, tx.total, tx.state) == (
            "redirect",
            "MWEB",
            12900,
            "NOTPAY",
        )
        assert action.url is not None
        assert action.url.startswith(f"{sandbox.url}/pay?prepay_id={tx.prepay_id}&package=")
        assert action.url.endswith("&redirect_url=" + quote(return_url, safe=""))

        with requests.Session() as browser:
            page = browser.get(action.url, timeout=5)
            assert page.status_code == 200
            assert "Oxford shirt" in page.text
            assert "确认支付 Pay ¥129.00" in page.text
            form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
            assert form == {
                "prepay_id": tx.prepay_id,
                "token": tx.token,
                "redirect_url": return_url,
            }
            target = re.search(r'<form method="post" action="([^"]+)"', page.text)
            assert target is not None
            paid = browser.post(
                urljoin(sandbox.url, target.group(1)), data=form, allow_redirects=False, timeout=5
            )
        assert (paid.status_code, paid.headers["Location"]) == (302, return_url)
        sandbox.gateway.notifier.wait()
        assert sandbox.gateway.notifier.deliveries == [(order.number, 204)]

        session = get_state(shop).session
        session.expire_all()
        assert [
            (p.provider, p.transaction_id, p.amount) for p in session.scalars(select(Payment))
        ] == [("wechatpay", tx.transaction_id, 12900)]
        assert status_of(shop, order.number) == "paid"
        assert provider.query(order.number) == PaymentStatus(
            order.number, "paid", tx.transaction_id, 12900
        )

        other = place()
        provider.start(h5_request(other, app_server.url + NOTIFY))
        assert provider.close(other.number) is None
        assert provider.query(other.number) == PaymentStatus(other.number, "closed", None, 12900)

        refund_no = f"{order.number}R1"
        assert provider.refund(
            order.number, refund_no=refund_no, amount=12900, total=12900, reason="七天无理由退货"
        ) == RefundResult(
            refund_id=sandbox.gateway.refunds[refund_no]["refund_id"], status="success"
        )
        assert provider.query(order.number).state == "refunded"
    finally:
        app_server.stop()


def test_jsapi_start_returns_bridge_parameters_signed_by_the_merchant(
    shop: Flask, sandbox: WechatPaySandbox, keys: SandboxKeys
) -> None:
    order = place()
    request = PaymentRequest(
        order_number=order.number,
        amount=order.total,
        description="Oxford shirt",
        notify_url=DEAD_NOTIFY_URL,
        return_url="http://127.0.0.1/back",
        scene="jsapi",
        openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    )
    action = provider_of(shop).start(request)
    tx = sandbox.gateway.transactions[order.number]
    assert (tx.trade_type, tx.openid) == ("JSAPI", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    params = action.params
    assert action.kind == "jsapi"
    assert sorted(params) == ["appId", "nonceStr", "package", "paySign", "signType", "timeStamp"]
    assert (params["appId"], params["package"], params["signType"]) == (
        keys.appid,
        f"prepay_id={tx.prepay_id}",
        "RSA",
    )
    assert abs(int(params["timeStamp"]) - time.time()) < 60
    message = crypto.lines(
        params["appId"], params["timeStamp"], params["nonceStr"], params["package"]
    )
    merchant_public = crypto.load_public_key(keys.merchant_public_key_pem)
    assert crypto.rsa_verify(merchant_public, message, params["paySign"])

    no_openid = PaymentRequest(**{**request.__dict__, "openid": None})
    with pytest.raises(ValidationError, match="needs the buyer's openid"):
        provider_of(shop).start(no_openid)


def test_gateway_refusals_raise_payment_gateway_error(
    shop: Flask, sandbox: WechatPaySandbox
) -> None:
    provider = provider_of(shop)
    order = place()
    for status, code, retryable in [
        (500, "SYSTEM_ERROR", True),
        (429, "FREQUENCY_LIMITED", True),
        (502, "BANK_ERROR", True),
        (400, "PARAM_ERROR", False),
    ]:
        sandbox.gateway.fail_next(status, code, "系统繁忙")
        with pytest.raises(PaymentGatewayError) as caught:
            provider.query(order.number)
        error = caught.value
        assert (error.code, error.retryable, error.message) == (
            code,
            retryable,
            f"WeChat Pay {status} {code}: 系统繁忙",
        )
    with pytest.raises(PaymentGatewayError) as caught:
        provider.query(order.number)  # never started at WeChat Pay
    assert (caught.value.code, caught.value.retryable) == ("ORDER_NOT_EXIST", False)

    tx = paid_in_sandbox(sandbox, shop, order)
    for call in (
        lambda: provider.close(order.number),
        lambda: provider.start(h5_request(order, DEAD_NOTIFY_URL)),
    ):
        with pytest.raises(PaymentGatewayError) as caught:
            call()
        assert (caught.value.code, caught.value.retryable) == ("ORDERPAID", False)
    assert tx.state == "SUCCESS"

    # The gateway takes a notify_url without a query string only.
    with pytest.raises(PaymentGatewayError) as caught:
        provider.start(h5_request(place(), DEAD_NOTIFY_URL + "?order=1"))
    assert (caught.value.code, caught.value.retryable) == ("PARAM_ERROR", False)

    closed = place()
    provider.start(h5_request(closed, DEAD_NOTIFY_URL))
    provider.close(closed.number)
    with pytest.raises(PaymentGatewayError) as caught:
        provider.start(h5_request(closed, DEAD_NOTIFY_URL))
    assert caught.value.code == "ORDER_CLOSED"


def test_an_unreachable_gateway_is_a_retryable_error(
    make_app: Callable[..., Flask], tmp_path: Any, keys: SandboxKeys
) -> None:
    app = make_app(
        sqlite_url(tmp_path), KOUDAI_WECHATPAY=keys.settings_for_client("http://127.0.0.1:1")
    )
    with pytest.raises(PaymentGatewayError) as caught:
        provider_of(app).query("KD20260101000001")
    assert (caught.value.retryable, caught.value.message) == (
        True,
        "WeChat Pay gateway unreachable (ConnectionError)",
    )
    provider_of(app).client.session.close()


@pytest.mark.parametrize(
    "platform_keys, message",
    [
        (
            lambda k: {k.platform_serial: k.merchant_public_key_pem},
            "WeChat Pay response {status}: WeChat Pay signature does not verify",
        ),
        (
            lambda k: {"PUB_KEY_ID_0000000000000000000077": k.platform_public_key_pem},
            "WeChat Pay response {status}: unknown Wechatpay-Serial '{serial}'; "
            "add its public key to platform_public_keys",
        ),
    ],
    ids=["wrong key", "unknown serial"],
)
def test_a_response_that_does_not_verify_is_refused(
    make_app: Callable[..., Flask],
    tmp_path: Any,
    keys: SandboxKeys,
    sandbox: WechatPaySandbox,
    platform_keys: Callable[[SandboxKeys], dict[str, str]],
    message: str,
) -> None:
    settings = {**sandbox.settings_for_client(), "platform_public_keys": platform_keys(keys)}
    app = make_app(sqlite_url(tmp_path), KOUDAI_WECHATPAY=settings)
    h5_transaction(sandbox, "KD20260101000002", DEAD_NOTIFY_URL)
    # A success answer (200) and a signed error answer (404) are both checked.
    for number, status in (("KD20260101000002", 200), ("KD20260101000001", 404)):
        with pytest.raises(SignatureError) as caught:
            provider_of(app).query(number)
        assert caught.value.message == message.format(status=status, serial=keys.platform_serial)
    provider_of(app).client.session.close()


def test_an_unsigned_success_answer_is_treated_as_forged(
    make_app: Callable[..., Flask], tmp_path: Any, keys: SandboxKeys
) -> None:
    impostor = Flask("impostor")

    @impostor.get("/v3/pay/transactions/out-trade-no/<number>")
    def paid(number: str) -> Any:
        return {"out_trade_no": number, "trade_state": "SUCCESS", "transaction_id": "42000001"}

    with LoopbackServer(impostor) as server:
        app = make_app(sqlite_url(tmp_path), KOUDAI_WECHATPAY=keys.settings_for_client(server.url))
        with pytest.raises(SignatureError) as caught:
            provider_of(app).query("KD20260101000001")
        provider_of(app).client.session.close()
    assert caught.value.message == (
        "WeChat Pay response 200: WeChat Pay signature headers missing: wechatpay-timestamp, "
        "wechatpay-nonce, wechatpay-signature, wechatpay-serial, wechatpay-signature-type"
    )


def test_the_sandbox_checks_every_authorization_like_the_gateway(
    sandbox: WechatPaySandbox, keys: SandboxKeys
) -> None:
    path = "/v3/pay/transactions/out-trade-no/KD20260101000001"
    canonical = f"{path}?mchid={keys.mchid}"
    key = crypto.load_private_key(keys.merchant_private_key_pem)

    def auth(url: str = canonical, **options: Any) -> str:
        return crypto.authorization(
            mchid=options.pop("mchid", keys.mchid),
            serial_no=options.pop("serial_no", keys.merchant_serial_no),
            key=key,
            method="GET",
            canonical_url=url,
            body=b"",
            **options,
        )

    platform = {keys.platform_serial: crypto.load_public_key(keys.platform_public_key_pem)}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({}, 401, "SIGN_ERROR"),
        ({"Authorization": auth(path)}, 401, "SIGN_ERROR"),  # query string left unsigned
        ({"Authorization": auth(timestamp=str(int(time.time()) - 400))}, 401, "SIGN_ERROR"),
        ({"Authorization": auth(serial_no="0" * 40)}, 401, "SIGN_ERROR"),
        ({"Authorization": auth().replace(",", ", ")}, 401, "SIGN_ERROR"),
        ({"Authorization": auth(), "User-Agent": ""}, 400, "INVALID_REQUEST"),
        ({"Authorization": auth()}, 404, "ORDER_NOT_EXIST"),
    ]
    with requests.Session() as session:
        for headers, status, code in cases:
            answer = session.get(
                sandbox.url + canonical,
                headers={"Accept": "application/json", **headers},
                timeout=5,
            )
            assert (answer.status_code, answer.json()["code"]) == (status, code), headers
            # Errors are signed too, with every Wechatpay-* header.
            crypto.verify_wechatpay_signature(answer.headers, answer.content, platform)


# -- the notify endpoint ---------------------------------------------------------------------


def test_a_notify_replayed_100_times_pays_once(shop: Flask, sandbox: WechatPaySandbox) -> None:
    order = place()
    tx = paid_in_sandbox(sandbox, shop, order)
    body = sandbox.gateway.notify_body(tx)
    before = counts(shop)
    client = shop.test_client()
    answers = [
        client.post(NOTIFY, data=body, headers=sandbox.gateway.notifier.headers(body))
        for _ in range(100)
    ]
    assert [(a.status_code, a.data) for a in answers] == [(204, b"")] * 100
    after = counts(shop)
    assert after["Payment"] == before["Payment"] + 1
    session = get_state(shop).session
    assert (
        session.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.to_status == "paid")
        )
        == 1
    )
    assert {k: after[k] - before[k] for k in ("Order", "StockMovement")} == {
        "Order": 0,
        "StockMovement": 0,
    }
    assert status_of(shop, order.number) == "paid"


def test_concurrent_redeliveries_over_the_socket_pay_once(
    shop: Flask, sandbox: WechatPaySandbox
) -> None:
    app_server = LoopbackServer(shop)
    try:
        order = place()
        tx = paid_in_sandbox(sandbox, shop, order)
        body, url = sandbox.gateway.notify_body(tx), app_server.url + NOTIFY
        statuses: list[int | None] = []

        def redeliver() -> None:
            for _ in range(5):
                statuses.append(sandbox.gateway.notifier.post(order.number, url, body))

        threads = [threading.Thread(target=redeliver) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == [204] * 40
    finally:
        app_server.stop()
    session = get_state(shop).session
    session.expire_all()
    assert [p.transaction_id for p in session.scalars(select(Payment))] == [tx.transaction_id]
    assert (
        session.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.to_status == "paid")
        )
        == 1
    )


def test_send_notify_redelivers_and_probes(shop: Flask, sandbox: WechatPaySandbox) -> None:
    app_server = LoopbackServer(shop)
    try:
        order = place()
        provider_of(shop).start(h5_request(order, app_server.url + NOTIFY))
        tx = sandbox.gateway.transactions[order.number]
        tx.notify_url = DEAD_NOTIFY_URL  # the pay-time notify is lost ...
        sandbox.gateway.pay(tx.prepay_id, tx.token)
        sandbox.gateway.notifier.wait()
        tx.notify_url = app_server.url + NOTIFY  # ... and delivered by hand
        assert sandbox.send_notify(order.number, signtest=True) == [401]
        assert status_of(shop, order.number) == "pending_payment"
        assert sandbox.send_notify(order.number, duplicate=3) == [204, 204, 204]
        assert status_of(shop, order.number) == "paid"
    finally:
        app_server.stop()


def test_the_sandbox_retries_a_notify_until_it_is_acknowledged(sandbox: WechatPaySandbox) -> None:
    merchant = Flask("merchant")
    answers = iter([500, 503, 204])
    received: list[bytes] = []

    @merchant.post("/notify")
    def notify() -> Any:
        from flask import request

        received.append(request.get_data())
        return "", next(answers)

    with LoopbackServer(merchant) as merchant_server:
        tx = h5_transaction(sandbox, "KD20260101000009", merchant_server.url + "/notify")
        sandbox.gateway.pay(tx.prepay_id, tx.token)
        sandbox.gateway.notifier.wait()
    assert sandbox.gateway.notifier.deliveries == [
        ("KD20260101000009", 500),
        ("KD20260101000009", 503),
        ("KD20260101000009", 204),
    ]
    assert len(set(received)) == 1  # the same event each time


def _signed(
    gateway: WechatPayGateway, tx: Transaction, **changes: Any
) -> tuple[dict[str, str], bytes]:
    body = gateway.notify_body(tx, **changes)
    return gateway.notifier.headers(body), body


def _tampered(gateway: WechatPayGateway, tx: Transaction) -> tuple[dict[str, str], bytes]:
    headers, body = _signed(gateway, tx)
    return headers, body.replace(b'"summary":"', b'"summary":"!')


def _wrong_serial(gateway: WechatPayGateway, tx: Transaction) -> tuple[dict[str, str], bytes]:
    headers, body = _signed(gateway, tx)
    return {**headers, "Wechatpay-Serial": "PUB_KEY_ID_0000000000000000000099"}, body


def _stale(gateway: WechatPayGateway, tx: Transaction) -> tuple[dict[str, str], bytes]:
    body = gateway.notify_body(tx)
    return gateway.notifier.headers(body, timestamp=int(time.time()) - 360), body


def _signtest(gateway: WechatPayGateway, tx: Transaction) -> tuple[dict[str, str], bytes]:
    body = gateway.notify_body(tx)
    return gateway.notifier.headers(body, signtest=True), body


AMOUNT_1 = {"total": 1, "payer_total": 1, "currency": "CNY", "payer_currency": "CNY"}
REFUSALS: list[tuple[str, Callable[..., tuple[dict[str, str], bytes]], int, str]] = [
    ("tampered body", _tampered, 401, r"WeChat Pay signature does not verify"),
    (
        "wrong serial",
        _wrong_serial,
        401,
        r"unknown Wechatpay-Serial 'PUB_KEY_ID_0000000000000000000099'; "
        r"add its public key to platform_public_keys",
    ),
    ("6 minutes old", _stale, 401, r"Wechatpay-Timestamp '\d+' is not within 5 minutes"),
    (
        "signtest probe",
        _signtest,
        401,
        r"WeChat Pay signature probe \(WECHATPAY/SIGNTEST/\) refused",
    ),
    (
        "wrong amount",
        lambda g, t: _signed(g, t, amount=AMOUNT_1),
        400,
        r"wechatpay notify for order KD\w+: amount 1 differs from the total 12900",
    ),
    (
        "wrong mchid",
        lambda g, t: _signed(g, t, mchid="1900000001"),
        400,
        r"WeChat Pay notify for another mchid '1900000001'",
    ),
    (
        "wrong appid",
        lambda g, t: _signed(g, t, appid="wx0000000000000000"),
        400,
        r"WeChat Pay notify for another appid 'wx0000000000000000'",
    ),
    (
        "unknown order",
        lambda g, t: _signed(g, t, out_trade_no="KD0000000000NOPE"),
        400,
        r"wechatpay notify for unknown order 'KD0000000000NOPE'",
    ),
]


@pytest.mark.parametrize(
    "forge, status, message", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_bad_notify_is_refused_logged_once_and_changes_nothing(
    shop: Flask,
    sandbox: WechatPaySandbox,
    keys: SandboxKeys,
    caplog: pytest.LogCaptureFixture,
    forge: Callable[..., tuple[dict[str, str], bytes]],
    status: int,
    message: str,
) -> None:
    order = place()
    headers, body = forge(sandbox.gateway, paid_in_sandbox(sandbox, shop, order))
    before = counts(shop)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        answer = shop.test_client().post(NOTIFY, data=body, headers=headers)
    assert answer.status_code == status
    assert answer.json is not None and answer.json["code"] == "FAIL"
    assert re.fullmatch(message, answer.json["message"])
    assert counts(shop) == before
    assert status_of(shop, order.number) == "pending_payment"
    assert_one_clean_warning(caplog, keys, headers, body)


def test_money_paid_for_an_order_cancelled_meanwhile_is_recorded_and_given_back(
    shop: Flask, sandbox: WechatPaySandbox
) -> None:
    """The buyer paid at the very moment the order was cancelled: the close at WeChat Pay
    came too late. The notify is acknowledged, the payment recorded and refunded in full."""
    order = place()
    tx = paid_in_sandbox(sandbox, shop, order)
    headers, body = _signed(sandbox.gateway, tx)
    orders.cancel(order.number, reason="buyer cancelled")  # its close finds the trade paid
    client = shop.test_client()
    for _ in range(3):  # WeChat Pay delivers again until it hears 2xx
        assert client.post(NOTIFY, data=body, headers=headers).status_code == 204
    assert status_of(shop, order.number) == "cancelled"
    assert tx.refunded == order.total  # the whole amount went back at the gateway, once
    with shop.app_context():
        session = get_state().session
        found = session.scalar(select(Order).where(Order.number == order.number))
        assert [(p.provider, p.transaction_id, p.amount) for p in found.payments] == [
            ("wechatpay", tx.transaction_id, order.total)
        ]
        assert [(r.amount, r.reason) for r in found.refunds] == [
            (order.total, "paid after the order was cancelled")
        ]
        assert found.paid_amount == found.refunded_amount == order.total
        notes = [e.note for e in found.events if e.from_status == e.to_status == "cancelled"]
        assert len(notes) == 2 and "paid after the order was cancelled" in notes[0]


def test_a_refund_notify_is_acknowledged_without_paying(
    shop: Flask, sandbox: WechatPaySandbox
) -> None:
    order = place()
    tx = paid_in_sandbox(sandbox, shop, order)
    plaintext = {
        "mchid": sandbox.keys.mchid,
        "out_trade_no": order.number,
        "transaction_id": tx.transaction_id,
        "out_refund_no": "R1",
        "refund_id": "50000000382019052709732678859",
        "refund_status": "SUCCESS",
        "amount": {"total": 12900, "refund": 12900, "payer_total": 12900, "payer_refund": 12900},
    }
    body = sandbox.gateway.notifier.envelope(
        plaintext, event_type="REFUND.SUCCESS", summary="退款成功"
    )
    before = counts(shop)
    answer = shop.test_client().post(
        NOTIFY, data=body, headers=sandbox.gateway.notifier.headers(body)
    )
    assert (answer.status_code, answer.data) == (204, b"")
    assert counts(shop) == before


def assert_one_clean_warning(
    caplog: pytest.LogCaptureFixture, keys: SandboxKeys, headers: dict[str, str], body: bytes
) -> None:
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname) for r in warnings] == [("koudai_flask.payments", "WARNING")]
    text = warnings[0].getMessage()
    assert text.startswith("wechatpay notify refused with ")
    secrets = [
        keys.apiv3_key,
        keys.merchant_private_key_pem.splitlines()[5],
        keys.platform_private_key_pem.splitlines()[5],
        headers["Wechatpay-Signature"][-40:],
        json.loads(body)["resource"]["ciphertext"][:40],
    ]
    assert [s for s in secrets if s in text] == []


# -- settings --------------------------------------------------------------------------------

BAD_SETTINGS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    (
        "missing key",
        lambda s: s.pop("merchant_serial_no"),
        "missing 'merchant_serial_no': set it to the serial number of the merchant API certificate",
    ),
    (
        "31-byte apiv3_key",
        lambda s: s.update(apiv3_key=s["apiv3_key"][:31]),
        "'apiv3_key' must be the 32-character APIv3 key set in the merchant platform "
        "(32 bytes, got 31)",
    ),
    (
        "unparseable private key",
        lambda s: s.update(
            merchant_private_key="-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n"
            "-----END PRIVATE KEY-----\n"
        ),
        "merchant_private_key could not be loaded as an RSA PEM key",
    ),
    (
        "unparseable platform key",
        lambda s: s.update(platform_public_keys={"PUB_KEY_ID_01": "not a PEM"}),
        "platform_public_keys['PUB_KEY_ID_01'] could not be loaded as an RSA PEM key",
    ),
    (
        "no platform key",
        lambda s: s.update(platform_public_keys={}),
        "missing 'platform_public_keys': set it to {serial: PEM} of the WeChat Pay public key(s)",
    ),
    (
        "not http",
        lambda s: s.update(gateway_url="ftp://api.mch.weixin.qq.com"),
        "'gateway_url' must be an http(s) URL such as https://api.mch.weixin.qq.com",
    ),
    (
        "typo",
        lambda s: s.update(apiv3key="x"),
        "unknown key 'apiv3key'; the keys are mchid, appid, apiv3_key, merchant_private_key, "
        "merchant_serial_no, platform_public_keys, gateway_url, timeout",
    ),
]


@pytest.mark.parametrize(
    "change, message", [c[1:] for c in BAD_SETTINGS], ids=[c[0] for c in BAD_SETTINGS]
)
def test_bad_settings_fail_at_init_naming_the_key(
    make_app: Callable[..., Flask],
    tmp_path: Any,
    keys: SandboxKeys,
    change: Callable[[dict[str, Any]], Any],
    message: str,
) -> None:
    settings = keys.settings_for_client("http://127.0.0.1:1")
    change(settings)
    with pytest.raises(ConfigError) as caught:
        make_app(sqlite_url(tmp_path), KOUDAI_WECHATPAY=settings)
    assert caught.value.message == f"KOUDAI_WECHATPAY: {message}"


def test_good_settings_are_normalised_and_none_turns_wechatpay_off(
    make_app: Callable[..., Flask], tmp_path: Any, keys: SandboxKeys
) -> None:
    app = make_app(
        sqlite_url(tmp_path), KOUDAI_WECHATPAY=keys.settings_for_client("https://pay.example.cn/")
    )
    assert app.config["KOUDAI_WECHATPAY"] == {
        **keys.settings_for_client("https://pay.example.cn"),
        "timeout": 10,
    }
    assert validate_settings(app.config["KOUDAI_WECHATPAY"]) == app.config["KOUDAI_WECHATPAY"]
    with app.app_context():
        assert list(payments.enabled()) == ["wechatpay", "offline"]
    assert build_provider(app) is build_provider(app)
    assert provider_of(app).client.session.headers["User-Agent"] == "koudai-flask/0.1.0"
    provider_of(app).client.session.close()

    off = make_app(sqlite_url(tmp_path))
    assert build_provider(off) is None
    with off.app_context():
        assert "wechatpay" not in payments.enabled()
    answer = off.test_client().post(NOTIFY, data=b"{}")
    assert (answer.status_code, answer.json) == (
        404,
        {"code": "FAIL", "message": "WeChat Pay is not configured"},
    )


# -- the CLI ---------------------------------------------------------------------------------


def test_sandbox_cli_serves_keeps_keys_and_prints_no_secrets(
    make_app: Callable[..., Flask], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(sqlite_url(tmp_path))
    folder = tmp_path / "inst0" / "koudai-sandbox" / "wechatpay"
    seen: list[Any] = []

    def serve_once() -> None:
        settings = json.loads((folder / "koudai_wechatpay.json").read_text(encoding="utf-8"))
        provider = WechatPayProvider(validate_settings(settings), user_agent="test")
        try:
            provider.query("KD20260101000001")
        except PaymentGatewayError as exc:  # a signed, verified answer from the sandbox
            seen.append((settings["gateway_url"], exc.code))
        finally:
            provider.client.session.close()
        raise KeyboardInterrupt  # Ctrl-C

    monkeypatch.setattr(sandbox_cli_module, "_wait_for_ctrl_c", serve_once)
    results = [app.test_cli_runner().invoke(sandbox_cli, ["wechatpay"]) for _ in range(2)]
    stored = SandboxKeys(**json.loads((folder / "sandbox_keys.json").read_text(encoding="utf-8")))
    for result, (url, code) in zip(results, seen, strict=True):
        assert (result.exit_code, code) == (0, "ORDER_NOT_EXIST")
        lines = result.stdout.splitlines()
        assert lines[0] == f"WeChat Pay sandbox gateway on {url}"
        assert f"  mchid               {stored.mchid}" in lines
        assert (
            f'  KOUDAI_WECHATPAY = json.load(open("{folder / "koudai_wechatpay.json"}"))' in lines
        )
        assert lines[-1] == "WeChat Pay sandbox stopped."
        assert "PRIVATE KEY" not in result.output and stored.apiv3_key not in result.output
    for name in ("sandbox_keys.json", "apiclient_key.pem", "koudai_wechatpay.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600


def test_the_order_is_sent_with_its_reservation_expiry_and_cannot_be_paid_after_it(
    shop: Flask, sandbox: WechatPaySandbox
) -> None:
    from koudai_flask.models import Reservation
    from koudai_flask.services import payments as payment_service

    order = place()
    payment_service.start(
        order.number,
        "wechatpay",
        scene="h5",
        notify_url=DEAD_NOTIFY_URL,
        return_url="http://127.0.0.1/back",
        client_ip="127.0.0.1",
    )
    session = get_state(shop).session
    expires = session.scalar(select(Reservation.expires_at).where(Reservation.order_id == order.id))
    assert expires is not None
    tx = sandbox.gateway.transactions[order.number]
    assert tx.expires_at == pytest.approx(expires.timestamp(), abs=1)  # sent to the second
    assert sandbox.gateway.cashier_problem(tx) is None

    tx.expires_at = time.time() - 1  # the reservation lapsed: the gateway takes no payment
    with pytest.raises(GatewayError):
        sandbox.gateway.pay(tx.prepay_id, tx.token)
    assert tx.state == "NOTPAY"


def test_the_gateway_refuses_a_malformed_time_expire(sandbox: WechatPaySandbox) -> None:
    body = {
        "appid": sandbox.keys.appid,
        "mchid": sandbox.keys.mchid,
        "description": "Oxford shirt",
        "out_trade_no": "KD2026112500001",
        "notify_url": DEAD_NOTIFY_URL,
        "amount": {"total": 12900, "currency": "CNY"},
        "scene_info": {"payer_client_ip": "127.0.0.1", "h5_info": {"type": "Wap"}},
        "time_expire": "2026-11-25 20:30:00",  # no offset: not RFC 3339
    }
    with pytest.raises(GatewayError) as refused:
        sandbox.gateway.create("MWEB", body)
    assert (refused.value.status, refused.value.code) == (400, "PARAM_ERROR")
    assert "time_expire" in refused.value.message
    assert "KD2026112500001" not in sandbox.gateway.transactions
