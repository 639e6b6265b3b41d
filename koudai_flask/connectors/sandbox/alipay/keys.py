"""The two RSA2 keypairs of a sandbox application, and Alipay-style signing with them.

The open platform pairs an app keypair (the app signs requests; Alipay holds the public
half) with Alipay's keypair (Alipay signs responses and notifies; the app holds the public
half). :class:`SandboxKeys` makes both, so the client and the sandbox match.
"""

from __future__ import annotations

import base64
import functools
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@functools.lru_cache(maxsize=16)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@functools.lru_cache(maxsize=16)
def _public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def rsa2_sign(content: str, private_pem: str) -> str:
    """Base64(SHA256withRSA PKCS#1 v1.5) of ``content`` as UTF-8."""
    raw = _private_key(private_pem).sign(
        content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(raw).decode("ascii")


def rsa2_verify(content: str, signature: str, public_pem: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        _public_key(public_pem).verify(
            raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_callback(params: dict[str, str], private_pem: str) -> dict[str, str]:
    """``params`` plus ``sign_type`` and ``sign``, signed as Alipay signs notifies and
    returns: over every non-empty field but ``sign`` and ``sign_type``, sorted."""
    unsigned = {k: v for k, v in params.items() if k not in ("sign", "sign_type")}
    content = "&".join(f"{k}={unsigned[k]}" for k in sorted(unsigned) if unsigned[k] != "")
    return {**unsigned, "sign_type": "RSA2", "sign": rsa2_sign(content, private_pem)}


def _keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode("ascii"), public.decode("ascii")


@dataclass(frozen=True)
class SandboxKeys:
    """The app's keypair and "Alipay's" keypair, as the open platform would hand them out."""

    app_id: str
    seller_id: str
    # Private keys stay out of repr(), so a failing test never prints them.
    app_private_key: str = field(repr=False)
    app_public_key: str
    alipay_private_key: str = field(repr=False)
    alipay_public_key: str

    @classmethod
    def generate(cls) -> SandboxKeys:
        app_private, app_public = _keypair()
        alipay_private, alipay_public = _keypair()
        return cls(
            app_id="2021" + "".join(secrets.choice("0123456789") for _ in range(12)),
            seller_id="2088" + "".join(secrets.choice("0123456789") for _ in range(12)),
            app_private_key=app_private,
            app_public_key=app_public,
            alipay_private_key=alipay_private,
            alipay_public_key=alipay_public,
        )

    def settings_for_client(self, gateway_url: str) -> dict[str, Any]:
        """The ``KOUDAI_ALIPAY`` dict of an app that talks to this sandbox."""
        return {
            "app_id": self.app_id,
            "app_private_key": self.app_private_key,
            "alipay_public_key": self.alipay_public_key,
            "gateway_url": gateway_url,
            "seller_id": self.seller_id,
        }
