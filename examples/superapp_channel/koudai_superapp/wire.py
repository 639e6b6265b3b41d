"""The super-app's merchant API signature, shared by the connector and the sandbox.

Every request carries ``X-SuperApp-App`` (the merchant's app id), ``X-SuperApp-Timestamp``
(unix seconds) and ``X-SuperApp-Signature``: lowercase hex of HMAC-SHA256 with the app secret
over ``METHOD \\n PATH \\n TIMESTAMP \\n BODY`` (the raw body bytes, empty for a GET). The
server refuses a signature that does not match, or a timestamp more than 300 s off its clock.
"""

from __future__ import annotations

import hashlib
import hmac

APP_HEADER = "X-SuperApp-App"
TIMESTAMP_HEADER = "X-SuperApp-Timestamp"
SIGNATURE_HEADER = "X-SuperApp-Signature"
TOLERANCE = 300


def signature(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = b"\n".join((method.upper().encode(), path.encode(), timestamp.encode(), body))
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def valid(secret: str, method: str, path: str, timestamp: str, body: bytes, given: str) -> bool:
    return hmac.compare_digest(signature(secret, method, path, timestamp, body), given)
