"""WeChat Pay API v3 cryptography: request signatures, response/notify verification, AES-GCM.

Everything here is the published algorithm and nothing more, so it can be checked against
the official test vectors: RSA-SHA256 with PKCS#1 v1.5 padding over newline-terminated
lines, and AEAD_AES_256_GCM for notify resources. The primitives come from ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
import time
from collections.abc import Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from koudai_flask.errors import SignatureError

# The Authorization scheme and the Wechatpay-Signature-Type value are the same string.
SCHEME = "WECHATPAY2-SHA256-RSA2048"
# Probe traffic that WeChat Pay sends on purpose: it must never verify (doc 4012075420).
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
# Requests, responses and notifies more than five minutes off the clock are refused.
MAX_CLOCK_SKEW = 300

SIGNED_HEADERS = (
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-signature",
    "wechatpay-serial",
    "wechatpay-signature-type",
)

_NONCE_ALPHABET = string.ascii_uppercase + string.digits


def new_nonce(length: int = 32) -> str:
    """A random nonce of upper-case letters and digits, as the official SDKs make them."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """Load the merchant's ``apiclient_key.pem``; raise ValueError unless it is an RSA key."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("is not an RSA private key")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """Load a WeChat Pay public key (``PUB_KEY_ID_...`` scheme) or a platform certificate."""
    data = pem.encode() if isinstance(pem, str) else pem
    key: object
    if b"-----BEGIN CERTIFICATE-----" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("is not an RSA public key")
    return key


def lines(*parts: str | bytes) -> bytes:
    """Join the parts as lines, each ending in ``\\n`` including the last (§2.1, §2.3)."""
    return b"".join((p.encode() if isinstance(p, str) else p) + b"\n" for p in parts)


def request_message(
    method: str, canonical_url: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """The five-line message a request signature covers; ``canonical_url`` keeps its query."""
    return lines(method, canonical_url, timestamp, nonce, body)


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 of SHA256withRSA (PKCS#1 v1.5) over ``message``."""
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def authorization(
    *,
    mchid: str,
    serial_no: str,
    key: rsa.RSAPrivateKey,
    method: str,
    canonical_url: str,
    body: bytes,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> str:
    """The ``Authorization`` header value of one request (§2.1)."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or new_nonce()
    signature = rsa_sign(key, request_message(method, canonical_url, timestamp, nonce, body))
    return (
        f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def pay_sign(key: rsa.RSAPrivateKey, appid: str, timestamp: str, nonce: str, package: str) -> str:
    """JSAPI ``paySign``: the merchant key over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``."""
    return rsa_sign(key, lines(appid, timestamp, nonce, package))


def verify_wechatpay_signature(
    headers: Mapping[str, str],
    body: bytes,
    public_keys: Mapping[str, rsa.RSAPublicKey],
    *,
    now: float | None = None,
) -> None:
    """Check the ``Wechatpay-*`` headers of a response or notify; raise SignatureError.

    The signed message is ``TIMESTAMP\\nNONCE\\nRAW_BODY\\n`` over the raw bytes (§2.3).
    """
    found = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in SIGNED_HEADERS if not found.get(name)]
    if missing:
        raise SignatureError(f"WeChat Pay signature headers missing: {', '.join(missing)}")
    if found["wechatpay-signature-type"] != SCHEME:
        raise SignatureError(
            f"unsupported Wechatpay-Signature-Type {found['wechatpay-signature-type']!r}"
        )
    serial = found["wechatpay-serial"]
    key = public_keys.get(serial)
    if key is None:
        raise SignatureError(
            f"unknown Wechatpay-Serial {serial[:64]!r}; add its public key to platform_public_keys"
        )
    timestamp = found["wechatpay-timestamp"]
    current = time.time() if now is None else now
    if not timestamp.isdigit() or abs(current - int(timestamp)) > MAX_CLOCK_SKEW:
        raise SignatureError(f"Wechatpay-Timestamp {timestamp[:20]!r} is not within 5 minutes")
    signature = found["wechatpay-signature"]
    if signature.startswith(SIGNTEST_PREFIX):
        raise SignatureError("WeChat Pay signature probe (WECHATPAY/SIGNTEST/) refused")
    if not rsa_verify(key, lines(timestamp, found["wechatpay-nonce"], body), signature):
        raise SignatureError("WeChat Pay signature does not verify")


def decrypt_resource(key: bytes, nonce: str, ciphertext: str, associated_data: str) -> bytes:
    """AES-GCM-decrypt a notify ``resource``; the ciphertext ends with the 16-byte tag.

    The key length is not checked here: production keys are 32 bytes (AES-256), but the
    official SDK vectors use 16-byte keys, which AES-GCM accepts as AES-128.
    """
    try:
        data = base64.b64decode(ciphertext, validate=True)
        return AESGCM(key).decrypt(nonce.encode(), data, associated_data.encode())
    except (InvalidTag, binascii.Error, ValueError):
        raise SignatureError(
            "the notify resource does not decrypt with the configured apiv3_key"
        ) from None
