"""A complete, matching key set for a sandbox merchant and the sandbox gateway."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_ALNUM = string.ascii_letters + string.digits


def random_text(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class SandboxKeys:
    """A complete, matching key set for one merchant and the sandbox gateway."""

    mchid: str
    appid: str
    # Secrets stay out of repr(), so a failing test never prints them.
    apiv3_key: str = field(repr=False)
    merchant_private_key_pem: str = field(repr=False)
    merchant_public_key_pem: str = field(repr=False)
    merchant_serial_no: str
    platform_private_key_pem: str = field(repr=False)
    platform_public_key_pem: str
    platform_serial: str

    @classmethod
    def generate(cls) -> SandboxKeys:
        merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            mchid="19" + random_text(8, string.digits),
            appid="wx" + secrets.token_hex(8),
            apiv3_key=random_text(32),
            merchant_private_key_pem=_private_pem(merchant),
            merchant_public_key_pem=_public_pem(merchant),
            merchant_serial_no=secrets.token_hex(20).upper(),
            platform_private_key_pem=_private_pem(platform),
            platform_public_key_pem=_public_pem(platform),
            # The "WeChat Pay public key" scheme names keys PUB_KEY_ID_ + 22 digits.
            platform_serial="PUB_KEY_ID_" + random_text(22, string.digits),
        )

    def settings_for_client(self, gateway_url: str) -> dict[str, Any]:
        """The ``KOUDAI_WECHATPAY`` value that talks to a sandbox at ``gateway_url``."""
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "apiv3_key": self.apiv3_key,
            "merchant_private_key": self.merchant_private_key_pem,
            "merchant_serial_no": self.merchant_serial_no,
            "platform_public_keys": {self.platform_serial: self.platform_public_key_pem},
            "gateway_url": gateway_url,
        }

    def sandbox_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`create_wechatpay_sandbox` for these keys."""
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "apiv3_key": self.apiv3_key,
            "merchant_public_key_pem": self.merchant_public_key_pem,
            "platform_private_key_pem": self.platform_private_key_pem,
            "platform_serial": self.platform_serial,
            "merchant_serial_no": self.merchant_serial_no,
        }


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
