"""Checking keys live, and saying in plain words what is wrong with them.

Each check makes the smallest real call that proves the keys work, through the same client
the shop uses afterwards, and changes nothing anywhere:

- WeChat Official Account: a ``stable_token`` fetch without ``force_refresh`` (PROTOCOLS
  §3.2), which, unlike the classic ``/cgi-bin/token``, never ends the token in use.
- WeChat Pay: a signed query of a made-up ``out_trade_no``. ``404 ORDER_NOT_EXIST`` means
  the gateway accepted our signature (mchid, serial number, private key), and the answer's
  own signature verified with the platform public key; ``401 SIGN_ERROR`` means it did not.
- Alipay: a signed ``alipay.trade.query`` of a made-up trade. ``ACQ.TRADE_NOT_EXIST`` with a
  verified signature means both keys are right; ``isv.invalid-signature`` means ours is not.

Before a check, the typed form is read (``prepare_*``): each value checked for its shape and
each key loaded, so a problem is named by its field. Every outcome is a
:class:`~koudai_flask.services.credential_findings.Finding`, whose words are made when shown
(:func:`describe`), in the reader's language; those names are importable from here as well.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from koudai_flask.connectors.errors import ConnectorError
from koudai_flask.errors import SignatureError
from koudai_flask.notifications.wechat import (
    DEFAULT_API_URL,
    TokenFetcher,
    WechatClient,
    WechatSettings,
)
from koudai_flask.payments.base import PaymentGatewayError
from koudai_flask.services.credential_findings import (
    FIELD_LABELS,
    MESSAGES,
    Finding,
    describe,
    problem,
)

TIMEOUT = 10.0  # seconds a check waits for the remote side


# -- reading the typed values ----------------------------------------------------------------

_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def _text(
    form: Mapping[str, str],
    name: str,
    problems: list[Finding],
    *,
    kind: str = "id",
    required: bool = True,
    default: str | None = None,
) -> str | None:
    value = str(form.get(name) or "").strip()
    if not value:
        if required and default is None:
            problems.append(problem("required", name))
        return default
    if kind == "id" and not _ID.fullmatch(value):
        problems.append(problem("bad_id", name))
    elif kind == "url" and (not re.match(r"https?://[^/\s]+", value) or len(value) > 300):
        problems.append(problem("bad_url", name))
    elif kind == "secret" and len(value) > 200:
        problems.append(problem("too_long", name))
    return value


def armoured(text: str, label: str) -> str:
    """PEM text as is; a bare Base64 key (as open.alipay.com shows keys) in PEM armour."""
    text = text.strip().replace("\r\n", "\n")
    if "-----BEGIN" in text or not text:
        return text + "\n" if text else text
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"


def _pem(
    form: Mapping[str, str],
    name: str,
    problems: list[Finding],
    *,
    private: bool,
    load: Any,
    required: bool = True,
) -> str | None:
    raw = str(form.get(name) or "")
    if not raw.strip():
        if required:
            problems.append(problem("required", name))
        return None
    if len(raw) > 20000:
        problems.append(problem("too_long", name))
        return None
    labels = ("PRIVATE KEY", "RSA PRIVATE KEY") if private else ("PUBLIC KEY",)
    for label in labels:
        text = armoured(raw, label)
        try:
            key = load(text)
        except (ValueError, TypeError, UnicodeEncodeError):
            continue
        if key.key_size < 2048:
            problems.append(problem("key_size", name, bits=key.key_size))
        return text
    problems.append(problem("pem_private" if private else "pem_public", name))
    return None


def prepare_wechat(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[Finding]]:
    """The Official Account's public values, its secrets and the problems of the typed form."""
    problems: list[Finding] = []
    values = {
        "appid": _text(form, "appid", problems),
        "api_url": _text(form, "api_url", problems, kind="url", default=DEFAULT_API_URL),
    }
    secret = _text(form, "secret", problems, kind="secret", required=False)
    return values, ({"secret": secret} if secret else {}), problems


def prepare_wechatpay(
    form: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, str], list[Finding]]:
    from koudai_flask.payments.wechatpay import DEFAULT_GATEWAY, crypto

    problems: list[Finding] = []
    values: dict[str, Any] = {
        "mchid": _text(form, "mchid", problems),
        "appid": _text(form, "appid", problems),
        "merchant_serial_no": _text(form, "merchant_serial_no", problems),
        "gateway_url": _text(form, "gateway_url", problems, kind="url", default=DEFAULT_GATEWAY),
    }
    key_id = _text(form, "platform_key_id", problems)
    public = _pem(form, "platform_public_key", problems, private=False, load=crypto.load_public_key)
    values["platform_public_keys"] = {key_id: public} if key_id and public else {}
    found: dict[str, str] = {}
    apiv3 = str(form.get("apiv3_key") or "").strip()
    if apiv3:
        size = len(apiv3.encode("utf-8"))
        if size != 32:
            problems.append(problem("apiv3_length", "apiv3_key", size=size))
        found["apiv3_key"] = apiv3
    private = _pem(
        form,
        "merchant_private_key",
        problems,
        private=True,
        load=crypto.load_private_key,
        required=False,
    )
    if private:
        found["merchant_private_key"] = private
    return values, found, problems


def prepare_alipay(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[Finding]]:
    from koudai_flask.payments.alipay import DEFAULT_GATEWAY, signing

    problems: list[Finding] = []
    values: dict[str, Any] = {
        "app_id": _text(form, "app_id", problems),
        "alipay_public_key": _pem(
            form, "alipay_public_key", problems, private=False, load=signing.load_public_key
        ),
        "gateway_url": _text(form, "gateway_url", problems, kind="url", default=DEFAULT_GATEWAY),
        "seller_id": _text(form, "seller_id", problems, required=False),
    }
    private = _pem(
        form,
        "app_private_key",
        problems,
        private=True,
        load=signing.load_private_key,
        required=False,
    )
    return values, ({"app_private_key": private} if private else {}), problems


# -- live checks -----------------------------------------------------------------------------


class _FetchOnly:
    """A token store that keeps nothing: the check fetches once and forgets the token."""

    def current(self, name: str) -> str | None:
        return None

    def refresh(self, name: str, fetch: TokenFetcher, *, stale: str | None) -> str:
        return fetch(False)[0]


_ERRCODE = re.compile(r"errcode (-?\d+)")
_WECHAT_REFUSALS = frozenset({40002, 40013, 40125, 41002, 41004})


def check_wechat(settings: Mapping[str, Any]) -> Finding:
    """Fetch a stable access token with ``appid`` and ``secret`` at ``api_url``."""
    api_url = str(settings.get("api_url") or DEFAULT_API_URL).rstrip("/")
    client = WechatClient(
        WechatSettings(
            appid=str(settings.get("appid") or ""),
            secret=str(settings.get("secret") or ""),
            api_url=api_url,
            stable_token=True,
            timeout=TIMEOUT,
        ),
        _FetchOnly(),
    )
    try:
        client.access_token()
    except ConnectorError as exc:
        found = _ERRCODE.search(exc.message)
        if found is None:
            if "unreachable" in exc.message:
                return problem("unreachable", service="WeChat", url=api_url)
            return problem("wechat_other", code="-", reason=exc.message)
        code = int(found.group(1))
        if code in _WECHAT_REFUSALS:
            return problem("wechat_refused", code=code)
        if code == 40164:
            return problem("wechat_ip")
        reason = exc.message.split(":", 1)[-1].strip()
        return problem("wechat_other", code=code, reason=reason)
    finally:
        client.close()
    return Finding(True, "wechat_ok")


def _probe_number() -> str:
    # A number no order of ours has (ours start with KOUDAI_ORDER_NUMBER_PREFIX + a date).
    return "KDCHECK" + secrets.token_hex(8).upper()


def check_wechatpay(settings: Mapping[str, Any]) -> Finding:
    """A signed query of a made-up order: accepted and verified, or why not."""
    from koudai_flask.payments.wechatpay import validate_settings
    from koudai_flask.payments.wechatpay.provider import WechatPayProvider

    checked = validate_settings(dict(settings))
    checked["timeout"] = min(float(checked["timeout"]), TIMEOUT)
    provider = WechatPayProvider(checked, user_agent="koudai-flask (set-up check)")
    try:
        provider.query(_probe_number())
    except PaymentGatewayError as exc:
        if exc.code == "ORDER_NOT_EXIST":
            return Finding(True, "wechatpay_ok")
        if exc.code == "SIGN_ERROR":
            return problem("wechatpay_sign")
        if exc.retryable and "unreachable" in exc.message:
            return problem("unreachable", service="WeChat Pay", url=checked["gateway_url"])
        return problem("wechatpay_other", reason=exc.message)
    except SignatureError:
        return problem("wechatpay_platform")
    finally:
        provider.client.session.close()
    return Finding(True, "wechatpay_ok")  # an order of that number exists: the keys work


def check_alipay(settings: Mapping[str, Any]) -> Finding:
    """A signed ``alipay.trade.query`` of a made-up trade: accepted and verified, or why not."""
    from koudai_flask.payments.alipay import validate_settings
    from koudai_flask.payments.alipay.provider import AlipayProvider

    checked = validate_settings(dict(settings))
    checked["timeout"] = min(float(checked["timeout"]), TIMEOUT)
    provider = AlipayProvider(checked)
    try:
        provider.query(_probe_number())
    except PaymentGatewayError as exc:
        if exc.code == "ACQ.TRADE_NOT_EXIST":
            return Finding(True, "alipay_ok")
        if exc.code == "isv.invalid-signature":
            return problem("alipay_sign")
        if exc.code == "isv.invalid-app-id":
            return problem("alipay_app_id")
        if exc.code == "unreachable":
            return problem("unreachable", service="Alipay", url=checked["gateway_url"])
        return problem("alipay_other", reason=exc.message)
    except SignatureError:
        return problem("alipay_verify")
    return Finding(True, "alipay_ok")


__all__ = [
    "FIELD_LABELS",
    "MESSAGES",
    "Finding",
    "armoured",
    "check_alipay",
    "check_wechat",
    "check_wechatpay",
    "describe",
    "prepare_alipay",
    "prepare_wechat",
    "prepare_wechatpay",
]
