"""What a key check found, and the words that say it in the reader's language.

A :class:`Finding` carries a message code of :data:`MESSAGES` and its values, never a key;
:func:`describe` makes the words when the finding is shown, with the field's label from
:data:`FIELD_LABELS`. The checks that produce findings are
:mod:`koudai_flask.services.credential_checks`; the onboarding pages and the saved last
check (``models.onboarding``) only need this vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from koudai_flask.i18n import lazy_gettext as _l

MESSAGES: dict[str, Any] = {
    "required": _l("%(field)s is required."),
    "too_long": _l("%(field)s is too long."),
    "bad_id": _l("%(field)s should be letters and digits only, as the platform shows it."),
    "bad_url": _l("%(field)s must be an address starting with https:// or http://."),
    "pem_private": _l(
        "%(field)s is not a PEM RSA key: paste the whole private key file, from its "
        "-----BEGIN line to its -----END line."
    ),
    "pem_public": _l(
        "%(field)s is not a PEM RSA public key or certificate: paste the whole key, from "
        "its -----BEGIN line to its -----END line."
    ),
    "key_size": _l("%(field)s is a %(bits)d-bit key; RSA2 needs a 2048-bit key."),
    "apiv3_length": _l(
        "The APIv3 key must be exactly 32 characters (this one has %(size)d): copy it again "
        "from the merchant platform (Account centre > API security)."
    ),
    "unreachable": _l(
        "Could not reach %(service)s at %(url)s: check the address and that this server can "
        "connect to it."
    ),
    "wechat_ok": _l("WeChat issued an access token: the AppID and AppSecret work."),
    "wechat_refused": _l(
        "WeChat refused the AppID or AppSecret (%(code)s): copy both again from the Official "
        "Account platform (Settings and development > Basic configuration)."
    ),
    "wechat_ip": _l(
        "WeChat refused this server's IP address (40164): add it to the IP whitelist of the "
        "Official Account (Basic configuration)."
    ),
    "wechat_other": _l("WeChat answered an error (%(code)s): %(reason)s"),
    "wechatpay_ok": _l(
        "WeChat Pay accepted a signed query and its answer verified with the platform public "
        "key: the merchant ID, serial number, private key and platform key work. The APIv3 "
        "key is proven by the first payment notice."
    ),
    "wechatpay_sign": _l(
        "WeChat Pay did not accept the signature: check the merchant serial number and "
        "private key (and the merchant ID)."
    ),
    "wechatpay_platform": _l(
        "WeChat Pay's answer did not verify with the platform public key: check the WeChat "
        "Pay public key and its ID."
    ),
    "wechatpay_other": _l("WeChat Pay refused the query: %(reason)s"),
    "alipay_ok": _l(
        "Alipay accepted a signed alipay.trade.query and its answer verified with the Alipay "
        "public key: the AppID and both keys work."
    ),
    "alipay_sign": _l(
        "Alipay did not accept the signature (isv.invalid-signature): check the app private "
        "key, and that its public key is the one set for this app on open.alipay.com."
    ),
    "alipay_app_id": _l(
        "Alipay does not know this AppID (isv.invalid-app-id): copy it from the app's page "
        "on open.alipay.com."
    ),
    "alipay_verify": _l(
        "Alipay's answer did not verify with the Alipay public key: paste the Alipay public "
        "key shown for the app (not the app's own public key)."
    ),
    "alipay_other": _l("Alipay refused the query: %(reason)s"),
    "unusable": _l(
        "The saved keys cannot be used any more (was SECRET_KEY changed?): enter them again."
    ),
}

FIELD_LABELS: dict[str, Any] = {
    "appid": _l("AppID"),
    "secret": _l("AppSecret"),
    "api_url": _l("API address"),
    "mchid": _l("Merchant ID"),
    "apiv3_key": _l("APIv3 key"),
    "merchant_private_key": _l("Merchant private key"),
    "merchant_serial_no": _l("Merchant certificate serial number"),
    "platform_key_id": _l("WeChat Pay public key ID"),
    "platform_public_key": _l("WeChat Pay public key"),
    "gateway_url": _l("Gateway address"),
    "app_id": _l("AppID"),
    "app_private_key": _l("App private key"),
    "alipay_public_key": _l("Alipay public key"),
    "seller_id": _l("Seller ID"),
}


@dataclass(frozen=True)
class Finding:
    """What a check found: ``ok``, a message code, its values, and the field at fault."""

    ok: bool
    code: str
    detail: dict[str, Any] = field(default_factory=dict)
    field: str | None = None


def describe(code: str | None, detail: Mapping[str, Any] | None = None) -> str:
    """The message ``code`` in the reader's language, field names included."""
    if not code or code not in MESSAGES:
        return ""
    values = dict(detail or {})
    if "field" in values:
        values["field"] = str(FIELD_LABELS.get(values["field"], values["field"]))
    try:
        return str(MESSAGES[code]) % values
    except (KeyError, TypeError, ValueError):
        return str(MESSAGES[code])


def problem(message: str, name: str | None = None, **detail: Any) -> Finding:
    """A failed finding: message code ``message``, its values, and the field ``name`` at fault."""
    if name is not None:
        detail.setdefault("field", name)
    return Finding(False, message, detail, name)
