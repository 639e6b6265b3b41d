"""Alipay open-platform RSA2 signatures: which string is signed, and signing it.

Three different strings are signed (PROTOCOLS.md §4), and mixing them up is the classic
integration bug, so each has its own function:

- a request: every parameter except ``sign`` and empty values, ``sign_type`` *included*;
- an async notify or a sync return: every parameter except ``sign`` *and* ``sign_type``;
- a sync API response: the exact JSON text of the ``<method>_response`` value as received.

RSA2 is SHA256withRSA with PKCS#1 v1.5 padding, Base64 (standard alphabet) on the wire.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The gateway reads and writes times as "yyyy-MM-dd HH:mm:ss" in Beijing time (GMT+8, no DST).
GMT8 = timezone(timedelta(hours=8), "GMT+8")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

_YUAN = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]{1,2})?")


def gateway_time(moment: datetime) -> str:
    """``moment`` (timezone-aware) written the way the gateway expects: GMT+8, to the second."""
    return moment.astimezone(GMT8).strftime(TIMESTAMP_FORMAT)


def compact_json(value: object) -> str:
    """``biz_content`` as the SDKs write it: no spaces, non-ASCII characters left as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def yuan(fen: int) -> str:
    """Integer fen as the gateway's amount string: 12900 -> ``"129.00"``."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError(f"an amount must be a non-negative integer of fen, got {fen!r}")
    return f"{fen // 100}.{fen % 100:02d}"


def fen(amount: str) -> int:
    """The gateway's yuan string back to integer fen, exactly (no float on the way)."""
    if not isinstance(amount, str) or not _YUAN.fullmatch(amount):
        raise ValueError(f"not an amount in yuan with at most 2 decimals: {amount!r}")
    return int(Decimal(amount) * 100)


# -- the strings that are signed -------------------------------------------------------------


def request_sign_content(params: Mapping[str, str]) -> str:
    """The string an app signs for a gateway request.

    §4: all parameters but ``sign`` and those with an empty value, ``sign_type`` included,
    sorted by key (ASCII), joined as ``k=v`` with ``&``, values raw (not URL-encoded).
    """
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def callback_sign_content(params: Mapping[str, str]) -> str:
    """The string Alipay signed for an async notify or a sync return (values URL-decoded).

    Unlike a request, ``sign_type`` is left out too (§4, the official SDKs'
    ``getSignCheckContentV1``); empty values are left out as in the official SDKs.
    """
    return "&".join(
        f"{k}={params[k]}"
        for k in sorted(params)
        if k not in ("sign", "sign_type") and params[k] != ""
    )


# -- keys, signing, verifying ----------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM text (PKCS#1 or PKCS#8); ValueError if it is not one."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@functools.lru_cache(maxsize=32)
def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM text (``BEGIN PUBLIC KEY``); ValueError if it is not one."""
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def sign(content: str, key: rsa.RSAPrivateKey) -> str:
    """Base64 of SHA256withRSA (PKCS#1 v1.5) over the UTF-8 bytes of ``content``."""
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(content: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    """Whether ``signature`` (Base64) is RSA2 over ``content`` by the holder of ``key``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


# -- sync responses --------------------------------------------------------------------------


def response_member(text: str, name: str) -> tuple[str, str, str | None]:
    """Find the signed member of a gateway response without re-serialising anything.

    Returns ``(member name, exact JSON text of its value, sign or None)`` for ``name``
    (``alipay_trade_query_response``) or, failing that, ``error_response`` (what the gateway
    sends for an unknown method). The signature covers the value's bytes exactly as sent,
    whitespace and escapes included, so the text is cut out of the raw body by walking the
    top-level object with the JSON decoder's own scanner. ValueError if malformed.
    """
    decoder = json.JSONDecoder()
    members: dict[str, tuple[int, int]] = {}
    values: dict[str, object] = {}
    position = _skip_space(text, 0)
    if text[position : position + 1] != "{":
        raise ValueError("the response is not a JSON object")
    position = _skip_space(text, position + 1)
    while text[position : position + 1] != "}":
        key, position = decoder.raw_decode(text, position)
        position = _skip_space(text, position)
        if not isinstance(key, str) or text[position : position + 1] != ":":
            raise ValueError("malformed member in the response")
        start = _skip_space(text, position + 1)
        values[key], end = decoder.raw_decode(text, start)
        members[key] = (start, end)
        position = _skip_space(text, end)
        if text[position : position + 1] == ",":
            position = _skip_space(text, position + 1)
        elif text[position : position + 1] != "}":
            raise ValueError("malformed response object")
    found = name if name in members else "error_response"
    if found not in members or not isinstance(values[found], dict):
        raise ValueError(f"the response has no {name!r} object")
    start, end = members[found]
    signature = values.get("sign")
    return found, text[start:end], signature if isinstance(signature, str) else None


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position
