"""TOP request signatures (PROTOCOLS §1.4): md5, hmac (HMAC-MD5) and hmac-sha256.

The signed string is every request parameter except ``sign`` (and byte/file parameters),
sorted by key, concatenated as ``key + value`` with no separator, UTF-8 encoded. The client
and the sandbox both sign through here, so one formula is tested against the official vector.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGN_METHODS = ("md5", "hmac", "hmac-sha256")


def signing_string(params: Mapping[str, object]) -> str:
    """``Σ sorted(key + value)`` over the signable parameters (§1.4 steps 1–3).

    ``sign`` itself and byte/file values are left out; so are empty values, which the
    official Java SDK skips (``areNotEmpty``) and which we therefore never send.
    """
    parts = []
    for key in sorted(params):
        value = params[key]
        if key == "sign" or value is None or isinstance(value, bytes | bytearray):
            continue
        if hasattr(value, "read"):  # an upload: multipart file parts are never signed
            continue
        text = str(value)
        if text == "":
            continue
        parts.append(key + text)
    return "".join(parts)


def sign(params: Mapping[str, object], secret: str, sign_method: str = "md5") -> str:
    """The uppercase hex ``sign`` of ``params`` with the app secret (§1.4 steps 4–5)."""
    payload = signing_string(params).encode("utf-8")
    key = secret.encode("utf-8")
    if sign_method == "md5":
        # The secret wraps the string on both sides; the secret-prefix-only form is obsolete.
        return hashlib.md5(key + payload + key).hexdigest().upper()
    if sign_method == "hmac":
        return hmac.new(key, payload, hashlib.md5).hexdigest().upper()
    if sign_method == "hmac-sha256":
        return hmac.new(key, payload, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unknown TOP sign_method {sign_method!r}; use one of {SIGN_METHODS}")


def verify(params: Mapping[str, object], secret: str) -> bool:
    """Whether ``params["sign"]`` matches, with the ``sign_method`` the request names."""
    method = str(params.get("sign_method") or "md5")
    given = str(params.get("sign") or "")
    if method not in SIGN_METHODS or not given:
        return False
    return hmac.compare_digest(given.upper(), sign(params, secret, method))


__all__ = ["SIGN_METHODS", "sign", "signing_string", "verify"]
