"""Alipay: signing strings, RSA2, response and notify verification, and the whole payment
against the sandbox gateway on real loopback sockets (PROTOCOLS.md §4)."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import select as os_select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy import func, select

from koudai_flask import Koudai, payments
from koudai_flask.connectors.sandbox.alipay import AlipaySandbox, SandboxKeys, sign_callback
from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.errors import ConfigError, SignatureError, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import Order, OrderEvent, Payment, StockMovement
from koudai_flask.payments.alipay import AlipayProvider, signing, validate_settings
from koudai_flask.payments.base import (
    PaymentGatewayError,
    PaymentNotice,
    PaymentRequest,
    PaymentStatus,
    RefundResult,
)
from koudai_flask.services import catalog, orders

OFFICIAL_GATEWAY = "https://openapi.alipay.com/gateway.do"
NOTIFY_PATH = "/shop-hooks/alipay/notify"
BIZ = '{"out_trade_no":"KD20140724000001","total_amount":"129.00","subject":"Oxford 衬衫 & co"}'
PARAMS = {
    "app_id": "2014072300007148",
    "method": "alipay.trade.wap.pay",
    "format": "JSON",
    "charset": "utf-8",
    "sign_type": "RSA2",
    "timestamp": "2014-07-24 03:07:50",
    "version": "1.0",
    "notify_url": "https://shop.example.com/shop-hooks/alipay/notify",
    "return_url": "",
    "biz_content": BIZ,
    "sign": "left-out==",
}


@pytest.fixture(scope="module")
def keys() -> SandboxKeys:
    return SandboxKeys.generate()


@pytest.fixture(scope="module")
def other_keys() -> SandboxKeys:
    return SandboxKeys.generate()


def offline_provider(keys: SandboxKeys, **clock: Any) -> AlipayProvider:
    return AlipayProvider(validate_settings(keys.settings_for_client(OFFICIAL_GATEWAY)), **clock)


# -- the strings that are signed -------------------------------------------------------------


def test_request_sign_content_is_byte_exact() -> None:
    assert signing.request_sign_content(PARAMS) == (
        "app_id=2014072300007148"
        '&biz_content={"out_trade_no":"KD20140724000001","total_amount":"129.00",'
        '"subject":"Oxford 衬衫 & co"}'
        "&charset=utf-8&format=JSON&method=alipay.trade.wap.pay"
        "&notify_url=https://shop.example.com/shop-hooks/alipay/notify"
        "&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0"
    )


def test_callback_sign_content_drops_sign_type_too() -> None:
    assert signing.callback_sign_content(PARAMS) == (
        "app_id=2014072300007148"
        '&biz_content={"out_trade_no":"KD20140724000001","total_amount":"129.00",'
        '"subject":"Oxford 衬衫 & co"}'
        "&charset=utf-8&format=JSON&method=alipay.trade.wap.pay"
        "&notify_url=https://shop.example.com/shop-hooks/alipay/notify"
        "&timestamp=2014-07-24 03:07:50&version=1.0"
    )


def test_start_builds_a_signed_wap_pay_url(keys: SandboxKeys) -> None:
    provider = offline_provider(keys, clock=lambda: datetime(2014, 7, 23, 19, 7, 50, tzinfo=UTC))
    action = provider.start(
        PaymentRequest(
            order_number="KD20140724000001",
            amount=12900,
            description="Oxford 衬衫 & co",
            notify_url="https://shop.example.com/shop-hooks/alipay/notify",
            return_url="https://shop.example.com/shop/orders/KD20140724000001",
        )
    )
    assert action.kind == "redirect"
    assert action.url is not None and action.url.startswith(OFFICIAL_GATEWAY + "?app_id=")
    params = dict(parse_qsl(urlsplit(action.url).query, strict_parsing=True))
    content = (
        f"app_id={keys.app_id}"
        '&biz_content={"out_trade_no":"KD20140724000001","total_amount":"129.00",'
        '"subject":"Oxford 衬衫 & co","product_code":"QUICK_WAP_WAY",'
        '"quit_url":"https://shop.example.com/shop/orders/KD20140724000001"}'
        "&charset=utf-8&format=JSON&method=alipay.trade.wap.pay"
        "&notify_url=https://shop.example.com/shop-hooks/alipay/notify"
        "&return_url=https://shop.example.com/shop/orders/KD20140724000001"
        "&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0"
    )
    assert signing.request_sign_content(params) == content
    public = signing.load_public_key(keys.app_public_key)
    assert signing.verify(content, params["sign"], public) is True
    assert signing.verify(content.replace("129.00", "1.29"), params["sign"], public) is False


def test_page_scene_uses_page_pay(keys: SandboxKeys) -> None:
    action = offline_provider(keys).start(
        PaymentRequest("KD1", 1, "x", "https://s/n", "https://s/r", scene="page")
    )
    assert action.url is not None
    params = dict(parse_qsl(urlsplit(action.url).query))
    assert params["method"] == "alipay.trade.page.pay"
    assert json.loads(params["biz_content"]) == {
        "out_trade_no": "KD1",
        "total_amount": "0.01",
        "subject": "x",
        "product_code": "FAST_INSTANT_TRADE_PAY",
    }


@pytest.mark.parametrize(
    ("fen", "yuan"), [(12900, "129.00"), (1, "0.01"), (10, "0.10"), (8888, "88.88"), (0, "0.00")]
)
def test_amounts_are_exact_both_ways(fen: int, yuan: str) -> None:
    assert signing.yuan(fen) == yuan
    assert signing.fen(yuan) == fen


@pytest.mark.parametrize("text", ["1.001", "-1.00", "1e2", "NaN", "", "01.00", " 1.00"])
def test_malformed_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        signing.fen(text)


def test_sign_matches_openssl(keys: SandboxKeys, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    (tmp_path / "key.pem").write_text(keys.app_private_key)
    (tmp_path / "pub.pem").write_text(keys.app_public_key)
    content = signing.request_sign_content(PARAMS)
    ours = signing.sign(content, signing.load_private_key(keys.app_private_key))
    theirs = subprocess.run(
        [openssl, "dgst", "-sha256", "-sign", str(tmp_path / "key.pem")],
        input=content.encode("utf-8"),
        capture_output=True,
        check=True,
    ).stdout
    assert base64.b64encode(theirs).decode() == ours
    (tmp_path / "sig.bin").write_bytes(theirs)
    verified = subprocess.run(
        [openssl, "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem")]
        + ["-signature", str(tmp_path / "sig.bin")],
        input=content.encode("utf-8"),
        capture_output=True,
    )
    assert verified.stdout.strip() == b"Verified OK"


def test_a_different_key_does_not_verify(keys: SandboxKeys, other_keys: SandboxKeys) -> None:
    sig = signing.sign("a=1", signing.load_private_key(other_keys.app_private_key))
    assert signing.verify("a=1", sig, signing.load_public_key(keys.app_public_key)) is False
    assert signing.verify("a=1", sig, signing.load_public_key(other_keys.app_public_key)) is True


# -- sync responses --------------------------------------------------------------------------

MEMBER = (
    '{ "code" : "10000", "msg": "Success",\n    "out_trade_no": "KD1", "trade_no": '
    '"2014072421001004", "trade_status": "TRADE_SUCCESS", "total_amount": "88.88",'
    ' "subject": "衬衫", "url": "https:\\/\\/example.com" }'
)


def _response(keys: SandboxKeys, member: str, *, sign_over: str | None = None) -> str:
    key = signing.load_private_key(keys.alipay_private_key)
    sig = signing.sign(member if sign_over is None else sign_over, key)
    return f'{{\n  "alipay_trade_query_response" : {member} ,\n  "sign" : "{sig}"\n}}'


def test_response_verifies_over_the_exact_substring(keys: SandboxKeys) -> None:
    value = offline_provider(keys).read_response("alipay.trade.query", _response(keys, MEMBER))
    assert (value["total_amount"], value["subject"]) == ("88.88", "衬衫")
    # Re-serialising the object, in either style, yields other bytes that do not verify.
    public = signing.load_public_key(keys.alipay_public_key)
    sig = json.loads(_response(keys, MEMBER))["sign"]
    assert signing.verify(json.dumps(json.loads(MEMBER)), sig, public) is False
    assert signing.verify(signing.compact_json(json.loads(MEMBER)), sig, public) is False


def test_response_with_sign_first_and_unescaped_slashes_verifies(keys: SandboxKeys) -> None:
    sig = signing.sign(
        MEMBER.replace("\\/", "/"), signing.load_private_key(keys.alipay_private_key)
    )
    text = f'{{"sign":"{sig}","alipay_trade_query_response":{MEMBER}}}'
    value = offline_provider(keys).read_response("alipay.trade.query", text)
    assert value["url"] == "https://example.com"


def test_tampered_or_unsigned_success_is_a_signature_error(keys: SandboxKeys) -> None:
    provider = offline_provider(keys)
    tampered = _response(keys, MEMBER).replace("88.88", "0.01")
    with pytest.raises(SignatureError, match="does not verify"):
        provider.read_response("alipay.trade.query", tampered)
    with pytest.raises(SignatureError, match="without a signature"):
        provider.read_response("alipay.trade.query", f'{{"alipay_trade_query_response":{MEMBER}}}')


def test_unsigned_error_is_a_gateway_error(keys: SandboxKeys) -> None:
    text = '{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.x"}}'
    with pytest.raises(PaymentGatewayError) as caught:
        offline_provider(keys).read_response("alipay.trade.query", text)
    assert (caught.value.code, caught.value.retryable) == ("isv.x", False)


# -- notify parsing --------------------------------------------------------------------------


def _notify(keys: SandboxKeys, **fields: str) -> dict[str, str]:
    base = {
        "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786",
        "notify_time": "2014-07-24 03:08:10",
        "app_id": keys.app_id,
        "seller_id": keys.seller_id,
        "charset": "utf-8",
        "version": "1.0",
        "out_trade_no": "KD20140724000001",
        "trade_no": "2014072421001004",
        "total_amount": "88.88",
        "trade_status": "TRADE_SUCCESS",
        "subject": "衬衫 & co",
        "fund_bill_list": '[{"amount":"88.88","fundChannel":"ALIPAYACCOUNT"}]',
    }
    return sign_callback({**base, **fields}, keys.alipay_private_key)


def test_parse_notify(keys: SandboxKeys) -> None:
    params = _notify(keys)
    notice = offline_provider(keys).parse_notify({}, urlencode(params).encode())
    assert notice == PaymentNotice(
        provider="alipay",
        order_number="KD20140724000001",
        transaction_id="2014072421001004",
        amount=8888,
        paid=True,
        raw=params,
    )


def test_parse_notify_in_the_charset_it_names(keys: SandboxKeys) -> None:
    params = _notify(keys, charset="gbk", trade_status="TRADE_CLOSED")
    notice = offline_provider(keys).parse_notify({}, urlencode(params, encoding="gbk").encode())
    assert (notice.raw["subject"], notice.paid) == ("衬衫 & co", False)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (lambda p: urlencode(p) + "&total_amount=0.01", ValidationError, "repeats the field"),
        (lambda p: urlencode({**p, "sign_type": "RSA"}), SignatureError, "sign_type 'RSA'"),
        (lambda p: urlencode({**p, "charset": "klingon"}), ValidationError, "unreadable charset"),
    ],
)
def test_parse_notify_refuses(
    keys: SandboxKeys, body: Callable[[dict[str, str]], str], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        offline_provider(keys).parse_notify({}, body(_notify(keys)).encode())


def test_parse_notify_without_a_charset_field_reads_the_content_type(keys: SandboxKeys) -> None:
    fields = {k: v for k, v in _notify(keys).items() if k not in ("charset", "sign")}
    params = sign_callback(fields, keys.alipay_private_key)
    body = urlencode(params, encoding="gbk").encode()
    headers = {"Content-Type": 'application/x-www-form-urlencoded; charset="GBK"'}
    notice = offline_provider(keys).parse_notify(headers, body)
    assert (notice.raw["subject"], notice.amount) == ("衬衫 & co", 8888)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trade_no": ""}, "alipay notify without trade_no"),
        ({"total_amount": "88.8.8"}, "alipay notify: "),
    ],
)
def test_a_signed_notify_without_a_field_or_with_a_bad_amount_is_refused(
    keys: SandboxKeys, fields: dict[str, str], message: str
) -> None:
    body = urlencode(_notify(keys, **fields)).encode()
    with pytest.raises(ValidationError, match=message):
        offline_provider(keys).parse_notify({}, body)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("answer", "code", "retryable", "message"),
    [
        (None, "unreachable", True, "could not be reached (ConnectionError)"),
        ((502, "bad gateway"), "http_502", True, "answered HTTP 502"),
        ((404, "no such page"), "http_404", False, "answered HTTP 404"),
        ((200, "<html>maintenance</html>"), None, False, "unreadable response"),
    ],
)
def test_gateway_failures_say_what_happened_and_whether_to_retry(
    keys: SandboxKeys,
    answer: tuple[int, str] | None,
    code: str | None,
    retryable: bool,
    message: str,
) -> None:
    def gateway(environ: Any, start_response: Any) -> list[bytes]:
        assert answer is not None
        start_response(f"{answer[0]} X", [("Content-Type", "text/html")])
        return [answer[1].encode()]

    server = LoopbackServer(gateway) if answer is not None else None
    url = f"{server.url}/gateway.do" if server else f"http://127.0.0.1:{_free_port()}/gateway.do"
    provider = AlipayProvider(validate_settings(keys.settings_for_client(url)))
    try:
        with pytest.raises(PaymentGatewayError, match=re.escape(message)) as caught:
            provider.query("KD20140724000001")
    finally:
        if server is not None:
            server.stop()
    assert caught.value.retryable is retryable
    if code is not None:
        assert caught.value.code == code


# -- settings --------------------------------------------------------------------------------


def test_settings_are_normalised(keys: SandboxKeys) -> None:
    settings = keys.settings_for_client(OFFICIAL_GATEWAY)
    del settings["gateway_url"], settings["seller_id"]
    defaults = {"gateway_url": OFFICIAL_GATEWAY, "timeout": 10, "seller_id": None}
    assert validate_settings(settings) == {**settings, **defaults}


def _small_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _bare(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


BAD_SETTINGS: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda s: s.pop("app_id"), "missing 'app_id': set it to the APPID"),
    (lambda s: s.update(app_key="x"), "unknown key 'app_key'; the keys are app_id, "),
    (
        lambda s: s.update(app_private_key=_bare(s["app_private_key"])),
        "'app_private_key' must be PEM",
    ),
    (lambda s: s.update(app_private_key=s["alipay_public_key"]), "'app_private_key' could not be"),
    (lambda s: s.update(alipay_public_key=s["app_private_key"]), "'alipay_public_key' could not"),
    (lambda s: s.update(app_private_key=_small_key()), "'app_private_key' is 1024-bit; RSA2"),
    (lambda s: s.update(gateway_url="ftp://openapi.alipay.com"), "'gateway_url' must be an http"),
    (lambda s: s.update(timeout=0), "'timeout' must be a positive number"),
    (lambda s: s.update(seller_id=2088), "'seller_id' must be"),
]


@pytest.mark.parametrize(("change", "message"), BAD_SETTINGS)
def test_bad_settings_fail_at_init(
    make_app: Callable[..., Flask],
    tmp_path: Path,
    keys: SandboxKeys,
    change: Callable[[dict[str, Any]], Any],
    message: str,
) -> None:
    settings = keys.settings_for_client(OFFICIAL_GATEWAY)
    change(settings)
    with pytest.raises(ConfigError) as caught:
        make_app(f"sqlite:///{tmp_path / 'c.db'}", KOUDAI_ALIPAY=settings)
    assert caught.value.message.startswith("KOUDAI_ALIPAY: " + message)
    assert "MII" not in caught.value.message  # no key material in the message


# -- against the sandbox, on real sockets ----------------------------------------------------


@dataclass
class Live:
    app: Flask
    url: str
    provider: AlipayProvider


@pytest.fixture
def sandbox(keys: SandboxKeys) -> Iterator[AlipaySandbox]:
    with AlipaySandbox(keys) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback only, whatever the environment's proxy says
        yield session


@pytest.fixture
def live(
    make_app: Callable[..., Flask], database_url: str, keys: SandboxKeys, sandbox: AlipaySandbox
) -> Iterator[Live]:
    app = make_app(database_url, KOUDAI_ALIPAY=keys.settings_for_client(sandbox.url))
    server = LoopbackServer(app)
    with app.app_context():
        catalog.create_product(
            title="Oxford shirt",
            skus=[{"code": "SHIRT-W", "price": 12900, "stock": 10}],
        )
        provider = payments.get_provider("alipay")
    assert isinstance(provider, AlipayProvider)
    yield Live(app, server.url, provider)
    server.stop()


def place(live: Live) -> str:
    with live.app.app_context():
        return orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}]).number


def open_cashier(live: Live, browser: requests.Session, number: str) -> requests.Response:
    action = live.provider.start(
        PaymentRequest(
            order_number=number,
            amount=12900,
            description="Oxford shirt",
            notify_url=live.url + NOTIFY_PATH,
            return_url=f"{live.url}/shop/orders/{number}",
        )
    )
    assert action.url is not None
    return browser.get(action.url, timeout=10)


def ledger(live: Live, number: str) -> tuple[str, int, int, int]:
    """The order's status and the counts of payments, order events and stock movements."""
    with live.app.app_context():
        session = get_state().session
        status = session.scalar(select(Order.status).where(Order.number == number))
        paid, events, movements = (
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Payment, OrderEvent, StockMovement)
        )
        session.rollback()
    return str(status), paid, events, movements


def test_pay_query_refund_through_the_sandbox(
    live: Live, sandbox: AlipaySandbox, browser: requests.Session
) -> None:
    number = place(live)
    page = open_cashier(live, browser, number)
    assert page.status_code == 200
    assert page.url.startswith(sandbox.base_url + "/cashier?token=")
    assert "<h1>确认付款 Pay ¥129.00</h1>" in page.text
    form = re.search(r'action="([^"]+)".*name="token" value="([^"]+)"', page.text)
    assert form is not None
    paid = browser.post(urljoin(page.url, form[1]), data={"token": form[2]}, allow_redirects=False)

    assert paid.status_code == 302
    location = paid.headers["Location"]
    assert location.startswith(f"{live.url}/shop/orders/{number}?")
    back = live.provider.verify_return(dict(parse_qsl(urlsplit(location).query)))
    assert (back["method"], back["out_trade_no"], back["total_amount"]) == (
        "alipay.trade.wap.pay.return",
        number,
        "129.00",
    )
    trade_no = sandbox.trades[number].trade_no
    assert sandbox.deliveries == [(number, 200, "success")]
    assert ledger(live, number)[:2] == ("paid", 1)
    with live.app.app_context():
        payment = get_state().session.scalars(select(Payment)).one()
        assert (payment.provider, payment.transaction_id, payment.amount) == (
            "alipay",
            trade_no,
            12900,
        )

    assert live.provider.query(number) == PaymentStatus(number, "paid", trade_no, 12900)
    refund = live.provider.refund(number, refund_no=f"{number}-1", amount=2900, total=12900)
    assert refund == RefundResult(refund_id=f"{number}-1", status="success")
    again = live.provider.refund(number, refund_no=f"{number}-1", amount=2900, total=12900)
    assert again == refund
    assert sandbox.trades[number].refunds == {f"{number}-1": "29.00"}
    with pytest.raises(PaymentGatewayError) as caught:
        live.provider.refund(number, refund_no=f"{number}-2", amount=10001, total=12900)
    assert caught.value.code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    with pytest.raises(PaymentGatewayError) as caught:
        live.provider.close(number)
    assert caught.value.code == "ACQ.TRADE_STATUS_ERROR"


def test_close_query_and_errors(
    live: Live, sandbox: AlipaySandbox, browser: requests.Session, other_keys: SandboxKeys
) -> None:
    number = place(live)
    assert open_cashier(live, browser, number).status_code == 200
    assert live.provider.query(number) == PaymentStatus(
        number, "pending", sandbox.trades[number].trade_no, 12900
    )
    live.provider.close(number)
    assert sandbox.trades[number].status == "TRADE_CLOSED"
    assert live.provider.query(number).state == "closed"
    live.provider.close("KD-never-opened")  # no trade at Alipay: nothing to close

    with pytest.raises(PaymentGatewayError) as caught:
        live.provider.query("KD-never-opened")
    assert (caught.value.code, caught.value.retryable) == ("ACQ.TRADE_NOT_EXIST", False)
    for code, sub_code in (("20000", "isp.unknow-error"), ("40004", "ACQ.SYSTEM_ERROR")):
        sandbox.fail_next(code, sub_code)
        with pytest.raises(PaymentGatewayError) as caught:
            live.provider.query(number)
        assert (caught.value.code, caught.value.retryable) == (sub_code, True)

    url = sandbox.url
    unknown_app = {**sandbox.keys.settings_for_client(url), "app_id": "2021000000000000"}
    stranger = AlipayProvider(validate_settings(unknown_app))
    with pytest.raises(PaymentGatewayError) as caught:  # an app the gateway does not know
        stranger.query(number)
    assert caught.value.code == "isv.invalid-app-id"
    forged = AlipayProvider(
        validate_settings(
            {
                **sandbox.keys.settings_for_client(url),
                "app_private_key": other_keys.app_private_key,
            }
        )
    )
    with pytest.raises(PaymentGatewayError) as caught:  # same app, signed by another key
        forged.query(number)
    assert caught.value.code == "isv.invalid-signature"
    misled = AlipayProvider(
        validate_settings(
            {
                **sandbox.keys.settings_for_client(url),
                "alipay_public_key": other_keys.alipay_public_key,
            }
        )
    )
    with pytest.raises(SignatureError, match="does not verify"):  # the answer is not Alipay's
        misled.query(number)


def test_sandbox_refuses_a_utc_timestamp(
    live: Live, sandbox: AlipaySandbox, browser: requests.Session
) -> None:
    utc_clock = AlipayProvider(
        validate_settings(sandbox.keys.settings_for_client(sandbox.url)),
        clock=lambda: datetime.now(UTC).replace(tzinfo=signing.GMT8),
    )
    with pytest.raises(PaymentGatewayError) as caught:
        utc_clock.query("KD1")
    assert caught.value.code == "isv.invalid-timestamp"
    action = live.provider.start(PaymentRequest("KD2", 100, "x", live.url + NOTIFY_PATH, live.url))
    assert action.url is not None
    tampered = browser.get(
        action.url.replace("total_amount%22%3A%221.00", "total_amount%22%3A%220.01")
    )
    assert (tampered.status_code, "isv.invalid-signature" in tampered.text) == (200, True)
    assert "KD2" not in sandbox.trades


def test_a_notify_replayed_100_times_is_one_payment(
    live: Live, sandbox: AlipaySandbox, browser: requests.Session
) -> None:
    number = place(live)
    page = open_cashier(live, browser, number)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token is not None
    browser.post(sandbox.base_url + "/cashier/pay", data={"token": token[1]})
    before = ledger(live, number)
    assert before[:2] == ("paid", 1)

    assert sandbox.send_notify(number, duplicate=100) == [(200, "success")] * 100
    assert ledger(live, number) == before


def test_concurrent_deliveries_make_one_payment(
    live: Live, sandbox: AlipaySandbox, browser: requests.Session
) -> None:
    number = place(live)
    open_cashier(live, browser, number)
    sandbox.pay(number, notify=False)
    before = ledger(live, number)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: sandbox.send_notify(number)[0], range(24)))
    assert replies == [(200, "success")] * 24
    after = ledger(live, number)
    assert after == ("paid", before[1] + 1, before[2] + 1, before[3])


# -- refusals --------------------------------------------------------------------------------


def _resign(keys: SandboxKeys, **fields: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda params: sign_callback({**params, **fields}, keys.alipay_private_key)


REFUSALS: list[tuple[str, Callable[..., dict[str, str]], int]] = [
    ("tampered", lambda k, o, p: {**p, "total_amount": "1.29"}, 401),
    ("missing sign", lambda k, o, p: {f: v for f, v in p.items() if f != "sign"}, 401),
    ("other key", lambda k, o, p: _resign(o)(p), 401),
    ("wrong app_id", lambda k, o, p: _resign(k, app_id="2021000000000000")(p), 400),
    ("wrong seller", lambda k, o, p: _resign(k, seller_id="2088000000000000")(p), 400),
    ("wrong amount", lambda k, o, p: _resign(k, total_amount="1.00")(p), 400),
    ("unknown order", lambda k, o, p: _resign(k, out_trade_no="KD1970")(p), 400),
]


@pytest.mark.parametrize(("case", "forge", "status"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_notify_changes_nothing(
    live: Live,
    sandbox: AlipaySandbox,
    browser: requests.Session,
    keys: SandboxKeys,
    other_keys: SandboxKeys,
    caplog: pytest.LogCaptureFixture,
    case: str,
    forge: Callable[..., dict[str, str]],
    status: int,
) -> None:
    number = place(live)
    open_cashier(live, browser, number)
    sandbox.pay(number, notify=False)
    before = ledger(live, number)
    params = forge(keys, other_keys, sandbox.notify_params(number))
    body = urlencode(params)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="koudai_flask.payments"):
        reply = live.app.test_client().post(
            NOTIFY_PATH, data=body, content_type="application/x-www-form-urlencoded"
        )

    assert (reply.status_code, reply.data, reply.mimetype) == (status, b"fail", "text/plain")
    assert ledger(live, number) == before
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname) for r in warnings] == [("koudai_flask.payments", "WARNING")]
    assert warnings[0].getMessage().startswith(f"alipay notify refused with {status} ")
    for secret in (*_key_lines(keys), *_key_lines(other_keys), body, params.get("sign", "—")):
        assert secret not in caplog.text


def _key_lines(keys: SandboxKeys) -> list[str]:
    pems = (keys.app_private_key, keys.alipay_private_key)
    return [line for pem in pems for line in pem.splitlines()[1:3]]


def _pay_at_the_cashier(
    live: Live, sandbox: AlipaySandbox, browser: requests.Session
) -> tuple[str, str]:
    """An order whose cashier page is open in the buyer's browser: its number and the
    cashier's token, for the buyer to confirm with later."""
    number = place(live)
    page = open_cashier(live, browser, number)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token is not None
    return number, token[1]


def test_cashier_retries_a_refused_notify(
    live: Live,
    sandbox: AlipaySandbox,
    browser: requests.Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from koudai_flask.services import payments as payment_service

    def refuse(notice: PaymentNotice) -> None:
        raise ValidationError("the shop is not ready for it")

    number, token = _pay_at_the_cashier(live, sandbox, browser)
    before = ledger(live, number)
    monkeypatch.setattr(payment_service, "apply_notice", refuse)
    paid = browser.post(
        sandbox.base_url + "/cashier/pay", data={"token": token}, allow_redirects=False
    )
    assert paid.status_code == 302
    assert sandbox.deliveries == [(number, 400, "fail")] * 3
    assert ledger(live, number) == before


def test_paying_at_a_cashier_left_open_after_a_cancel_gives_the_money_back(
    live: Live, sandbox: AlipaySandbox, browser: requests.Session
) -> None:
    number, token = _pay_at_the_cashier(live, sandbox, browser)
    with live.app.app_context():
        orders.cancel(number, reason="buyer cancelled")
    paid = browser.post(
        sandbox.base_url + "/cashier/pay", data={"token": token}, allow_redirects=False
    )
    assert paid.status_code == 302
    assert sandbox.deliveries == [(number, 200, "success")]
    trade = sandbox.trades[number]
    assert (trade.refunded, trade.status) == (Decimal(trade.total_amount), "TRADE_CLOSED")
    status, payments_count, _, _ = ledger(live, number)
    assert (status, payments_count) == ("cancelled", 1)


def test_an_oversized_notify_is_refused(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    reply = live.app.test_client().post(
        NOTIFY_PATH, data=b"a=" + b"x" * 70_000, content_type="application/x-www-form-urlencoded"
    )
    assert (reply.status_code, reply.data) == (413, b"fail")
    assert [r.getMessage()[:33] for r in caplog.records if r.levelno >= logging.WARNING] == [
        "alipay notify refused with 413 fr"
    ]


def test_not_configured_is_404(make_app: Callable[..., Flask], database_url: str) -> None:
    reply = make_app(database_url).test_client().post(NOTIFY_PATH, data={"a": "1"})
    assert (reply.status_code, reply.data) == (404, b"fail")


def test_host_csrf_protection_does_not_block_the_notify(
    tmp_path: Path, database_url: str, keys: SandboxKeys
) -> None:
    from flask_wtf.csrf import CSRFProtect

    app = Flask("csrf_host", instance_path=str(tmp_path / "csrf"))
    app.config.update(
        SECRET_KEY="s",
        KOUDAI_DATABASE_URI=database_url,
        KOUDAI_ALIPAY=keys.settings_for_client(OFFICIAL_GATEWAY),
    )
    app.add_url_rule("/host-form", "host_form", lambda: "saved", methods=["POST"])
    CSRFProtect(app)
    Koudai(app)
    try:
        body = urlencode(_notify(keys, trade_status="WAIT_BUYER_PAY", out_trade_no="KD-none"))
        reply = app.test_client().post(
            NOTIFY_PATH, data=body, content_type="application/x-www-form-urlencoded"
        )
        # Past CSRF and the signature: refused only because the order does not exist.
        assert (reply.status_code, reply.data) == (400, b"fail")
        assert app.test_client().post("/host-form").status_code == 400  # the host's CSRF is on
    finally:
        engine = get_state(app).engine
        assert engine is not None
        engine.dispose()


# -- the CLI ---------------------------------------------------------------------------------

# A terminal's Ctrl+C reaches a process whose SIGINT is neither ignored nor blocked; the
# child starts that way whatever its parent (a test worker) left behind, and says what it
# inherited. On SIGUSR1 it prints every thread's stack, for a failure message.
CLI_SCRIPT = """
import faulthandler, signal, sys
inherited = (signal.getsignal(signal.SIGINT), signal.SIGINT in signal.pthread_sigmask(
    signal.SIG_BLOCK, []))
print("inherited SIGINT handler %r, blocked %s" % inherited, file=sys.stderr)
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
faulthandler.register(signal.SIGUSR1)
from flask import Flask
from flask.cli import ScriptInfo
from koudai_flask.connectors.sandbox.cli import sandbox_cli
app = Flask("cli_host", instance_path=sys.argv[1])
sandbox_cli.main(["alipay", "--port", "0"], prog_name="flask koudai sandbox",
                 obj=ScriptInfo(create_app=lambda: app))
"""


def test_cli_serves_the_sandbox_and_prints_no_secret(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-u", "-c", CLI_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + 30
    while b"Press Ctrl+C" not in output and time.monotonic() < deadline:
        # Raw reads: a buffered readline() would hide later lines from select().
        if os_select.select([process.stdout], [], [], 0.5)[0]:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            output += chunk
    try:
        text = output.decode()
        assert "Press Ctrl+C to stop." in text, text
        gateway = re.search(r"gateway on (\S+)", text)
        assert gateway is not None
        folder = tmp_path / "koudai-sandbox" / "alipay"
        settings = json.loads((folder / "koudai_alipay.json").read_text())
        assert settings["gateway_url"] == gateway[1]
        assert "PRIVATE KEY" not in text and _bare(settings["app_private_key"])[:40] not in text
        for name in ("koudai_alipay.json", "app_private_key.pem", "sandbox_keys.json"):
            assert os.stat(folder / name).st_mode & 0o777 == 0o600
        provider = AlipayProvider(validate_settings(settings))
        with pytest.raises(PaymentGatewayError) as caught:
            provider.query("KD-none")  # signed, verified, and answered by the sandbox
        assert caught.value.code == "ACQ.TRADE_NOT_EXIST"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # its threads' stacks, to stderr
            time.sleep(1)
            process.kill()  # leave nothing running for the next test
            out, err = process.communicate()
            pytest.fail(f"Ctrl+C did not stop the sandbox: {out!r} {err!r}")
    assert process.returncode == 0, err
    assert out.decode().strip().endswith("Alipay sandbox stopped.")


def test_the_trade_closes_at_the_reservation_expiry(
    live: Live, sandbox: AlipaySandbox, browser: requests.Session
) -> None:
    from koudai_flask.connectors.sandbox.alipay.gateway import GMT8, GatewayError
    from koudai_flask.models import Reservation
    from koudai_flask.services import payments as payment_service

    number = place(live)
    with live.app.app_context():
        action = payment_service.start(
            number,
            "alipay",
            scene="h5",
            notify_url=live.url + NOTIFY_PATH,
            return_url=f"{live.url}/shop/orders/{number}",
            client_ip="127.0.0.1",
        )
        expires = get_state(live.app).session.scalar(
            select(Reservation.expires_at)
            .join(Order, Order.id == Reservation.order_id)
            .where(Order.number == number)
        )
    assert action.url is not None and expires is not None
    assert browser.get(action.url, timeout=10).status_code == 200  # the cashier opens the trade
    trade = sandbox.trades[number]
    assert trade.time_expire == expires.astimezone(GMT8).replace(microsecond=0)

    trade.time_expire = datetime.now(GMT8) - timedelta(seconds=1)
    with pytest.raises(GatewayError) as refused:
        sandbox.pay(number, notify=False)
    assert refused.value.payload["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    assert sandbox.trades[number].status == "TRADE_CLOSED"
