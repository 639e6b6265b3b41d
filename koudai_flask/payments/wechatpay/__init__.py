"""WeChat Pay API v3 (微信支付): settings, provider factory and the notify route.

``KOUDAI_WECHATPAY`` holds one merchant account::

    KOUDAI_WECHATPAY = {
        "mchid": "1900007291",                      # 商户号
        "appid": "wxd678efh567hg6787",              # the Official Account / mini program
        "apiv3_key": "...32 characters...",         # APIv3 密钥
        "merchant_private_key": open("apiclient_key.pem").read(),
        "merchant_serial_no": "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB",
        "platform_public_keys": {"PUB_KEY_ID_...": open("pub_key.pem").read()},
        "gateway_url": "https://api.mch.weixin.qq.com",   # optional
        "timeout": 10,                                     # optional, seconds
    }

``platform_public_keys`` maps each ``Wechatpay-Serial`` to a WeChat Pay public key or, in
the legacy scheme, a platform certificate (PEM); list the old and the new one during a
rotation. The notify URL is ``<KOUDAI_HOOKS_URL_PREFIX>/wechatpay/notify``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Flask

from koudai_flask.payments.base import cached_provider
from koudai_flask.payments.wechatpay import crypto
from koudai_flask.payments.wechatpay.provider import WechatPayProvider

SETTING = "KOUDAI_WECHATPAY"
DEFAULT_GATEWAY = "https://api.mch.weixin.qq.com"
DEFAULT_TIMEOUT = 10
_CACHE = "koudai_wechatpay"

REQUIRED = {
    "mchid": "the merchant id (商户号)",
    "appid": "the appid of the Official Account or mini program bound to the merchant",
    "apiv3_key": "the 32-character APIv3 key set in the merchant platform",
    "merchant_private_key": "the PEM text of apiclient_key.pem",
    "merchant_serial_no": "the serial number of the merchant API certificate",
    "platform_public_keys": "{serial: PEM} of the WeChat Pay public key(s)",
}
OPTIONAL = ("gateway_url", "timeout")


def validate_settings(value: Any) -> dict[str, Any]:
    """Check ``KOUDAI_WECHATPAY`` and return it normalised; ValueError names the fix.

    Messages name keys, never their values: most of them are secrets.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a dict with the keys {', '.join(REQUIRED)}")
    unknown = sorted(set(value) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        known = ", ".join([*REQUIRED, *OPTIONAL])
        raise ValueError(f"unknown key {unknown[0]!r}; the keys are {known}")
    for key, meaning in REQUIRED.items():
        if value.get(key) in (None, "", {}):
            raise ValueError(f"missing {key!r}: set it to {meaning}")
    settings: dict[str, Any] = {}
    for key in ("mchid", "appid", "merchant_serial_no"):
        if not isinstance(value[key], str):
            raise ValueError(f"{key!r} must be a string: {REQUIRED[key]}")
        settings[key] = value[key].strip()
    apiv3_key = value["apiv3_key"]
    if not isinstance(apiv3_key, str) or len(apiv3_key.encode("utf-8")) != 32:
        size = len(apiv3_key.encode("utf-8")) if isinstance(apiv3_key, str) else "not a string"
        raise ValueError(f"'apiv3_key' must be {REQUIRED['apiv3_key']} (32 bytes, got {size})")
    settings["apiv3_key"] = apiv3_key
    settings["merchant_private_key"] = _pem(
        value["merchant_private_key"], "merchant_private_key", crypto.load_private_key
    )
    keys = value["platform_public_keys"]
    if not isinstance(keys, Mapping):
        raise ValueError(f"'platform_public_keys' must be {REQUIRED['platform_public_keys']}")
    settings["platform_public_keys"] = {
        str(serial): _pem(pem, f"platform_public_keys[{serial!r}]", crypto.load_public_key)
        for serial, pem in keys.items()
    }
    gateway = value.get("gateway_url", DEFAULT_GATEWAY)
    if not isinstance(gateway, str) or not gateway.startswith(("https://", "http://")):
        raise ValueError("'gateway_url' must be an http(s) URL such as " + DEFAULT_GATEWAY)
    settings["gateway_url"] = gateway.rstrip("/")
    timeout = value.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError("'timeout' must be a positive number of seconds")
    settings["timeout"] = timeout
    return settings


def _pem(value: Any, key: str, load: Callable[[str], object]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be PEM text (a str)")
    try:
        load(value)
    except (ValueError, TypeError):
        # cryptography's own message is generic; the key material never goes in a message.
        raise ValueError(f"{key} could not be loaded as an RSA PEM key") from None
    return value


def build_provider(app: Flask) -> WechatPayProvider | None:
    """The app's provider, built once per settings object; None when not configured."""
    from koudai_flask import __version__

    return cached_provider(
        app,
        SETTING,
        validate_settings,
        lambda checked: WechatPayProvider(checked, user_agent=f"koudai-flask/{__version__}"),
    )


def register_routes(bp: Blueprint) -> None:
    from koudai_flask.payments.wechatpay.views import wechatpay_notify

    bp.add_url_rule("/wechatpay/notify", "wechatpay_notify", wechatpay_notify, methods=["POST"])


__all__ = ["SETTING", "WechatPayProvider", "build_provider", "register_routes", "validate_settings"]
