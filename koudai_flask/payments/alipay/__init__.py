"""Alipay open platform (支付宝开放平台): settings, provider factory and the notify route.

``KOUDAI_ALIPAY`` holds one application::

    KOUDAI_ALIPAY = {
        "app_id": "2021000117673683",                      # the APPID on open.alipay.com
        "app_private_key": open("app_private_key.pem").read(),   # signs our requests
        "alipay_public_key": open("alipay_public_key.pem").read(),  # verifies Alipay
        "gateway_url": "https://openapi.alipay.com/gateway.do",  # optional
        "timeout": 10,                                     # optional, seconds
        "seller_id": "2088102147948060",                   # optional: notifies must match
    }

Keys are RSA2 (2048-bit RSA) in PEM; the "public key mode" of the open platform, not the
certificate mode. The notify URL is ``<KOUDAI_HOOKS_URL_PREFIX>/alipay/notify``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask

from koudai_flask.payments.alipay import signing
from koudai_flask.payments.alipay.provider import AlipayProvider
from koudai_flask.payments.base import cached_provider

SETTING = "KOUDAI_ALIPAY"
DEFAULT_GATEWAY = "https://openapi.alipay.com/gateway.do"
DEFAULT_TIMEOUT = 10
_CACHE = "koudai_alipay"

REQUIRED = {
    "app_id": "the APPID of your application on open.alipay.com",
    "app_private_key": "the PEM text of your application's RSA2 private key",
    "alipay_public_key": "the PEM text of the Alipay public key shown for your application",
}
OPTIONAL = ("gateway_url", "timeout", "seller_id")


def validate_settings(value: Any) -> dict[str, Any]:
    """Check ``KOUDAI_ALIPAY`` and return it normalised; ValueError names the fix.

    Messages name keys, never their values: two of them are keys in the other sense.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a dict with the keys {', '.join(REQUIRED)}")
    unknown = sorted(set(value) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        known = ", ".join([*REQUIRED, *OPTIONAL])
        raise ValueError(f"unknown key {unknown[0]!r}; the keys are {known}")
    for key, meaning in REQUIRED.items():
        if value.get(key) in (None, ""):
            raise ValueError(f"missing {key!r}: set it to {meaning}")
    if not isinstance(value["app_id"], str):
        raise ValueError(f"'app_id' must be a string: {REQUIRED['app_id']}")
    settings: dict[str, Any] = {"app_id": value["app_id"].strip()}
    settings["app_private_key"] = _pem(
        value["app_private_key"], "app_private_key", "PRIVATE KEY", signing.load_private_key
    )
    settings["alipay_public_key"] = _pem(
        value["alipay_public_key"], "alipay_public_key", "PUBLIC KEY", signing.load_public_key
    )
    gateway = value.get("gateway_url", DEFAULT_GATEWAY)
    parts = urlsplit(gateway) if isinstance(gateway, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'gateway_url' must be an http(s) URL such as {DEFAULT_GATEWAY}")
    settings["gateway_url"] = gateway
    timeout = value.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError("'timeout' must be a positive number of seconds")
    settings["timeout"] = timeout
    seller_id = value.get("seller_id")
    if seller_id is not None and (not isinstance(seller_id, str) or not seller_id.strip()):
        raise ValueError("'seller_id' must be the seller's 2088... id as a string, or None")
    settings["seller_id"] = seller_id.strip() if seller_id else None
    return settings


def _pem(value: Any, key: str, label: str, load: Callable[[str], Any]) -> str:
    if not isinstance(value, str) or "-----BEGIN" not in value:
        # The open platform shows keys as one bare Base64 line; PEM needs its armour.
        raise ValueError(
            f"{key!r} must be PEM text: put the Base64 key between "
            f"'-----BEGIN {label}-----' and '-----END {label}-----' lines"
        )
    try:
        key_object = load(value)
    except (ValueError, TypeError, UnicodeEncodeError):
        # cryptography's own message is generic; the key material never goes in a message.
        raise ValueError(f"{key!r} could not be loaded as an RSA {label.lower()}") from None
    if key_object.key_size < 2048:
        raise ValueError(f"{key!r} is {key_object.key_size}-bit; RSA2 needs a 2048-bit key")
    return value


def build_provider(app: Flask) -> AlipayProvider | None:
    """The app's provider, built once per settings object; None when not configured."""
    return cached_provider(app, SETTING, validate_settings, AlipayProvider)


def register_routes(bp: Blueprint) -> None:
    from koudai_flask.payments.alipay.views import alipay_notify

    bp.add_url_rule("/alipay/notify", "alipay_notify", alipay_notify, methods=["POST"])


__all__ = ["SETTING", "AlipayProvider", "build_provider", "register_routes", "validate_settings"]
