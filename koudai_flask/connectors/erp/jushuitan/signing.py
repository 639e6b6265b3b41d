"""Jushuitan open platform v2 request signatures (PROTOCOLS §6.1).

``sign = lower(hex(MD5(app_secret + Σ sorted(key + value))))`` over every posted parameter
except ``sign`` itself, UTF-8 encoded. Unlike TOP the secret is a prefix only, and ``biz``
is signed as the exact JSON text that is posted, so the client and the sandbox both sign
through here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def signing_string(params: Mapping[str, object]) -> str:
    """``Σ sorted(key + value)`` over the parameters, ``sign`` left out.

    Empty values are skipped: the client never sends one, and a parameter that is absent
    and one that is empty then sign the same way.
    """
    parts = []
    for key in sorted(params):
        value = params[key]
        if key == "sign" or value is None:
            continue
        text = str(value)
        if text == "":
            continue
        parts.append(key + text)
    return "".join(parts)


def sign(params: Mapping[str, object], app_secret: str) -> str:
    """The lowercase hex ``sign`` of ``params`` with the app secret."""
    payload = (app_secret + signing_string(params)).encode("utf-8")
    return hashlib.md5(payload).hexdigest()


def verify(params: Mapping[str, object], app_secret: str) -> bool:
    """Whether ``params["sign"]`` is the sign of the other parameters (case-insensitive)."""
    given = str(params.get("sign") or "")
    if not given:
        return False
    return hmac.compare_digest(given.lower(), sign(params, app_secret))


__all__ = ["sign", "signing_string", "verify"]
