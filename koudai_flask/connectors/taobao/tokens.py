"""Seller tokens at rest: Fernet ciphertext keyed from the Flask ``SECRET_KEY``.

A linked shop's settings dict keeps only ciphertext of its ``access_token`` (the TOP
session) and ``refresh_token``. The Fernet key is derived with HKDF-SHA256 (salt
``koudai-taobao-tokens``), so the raw SECRET_KEY is never the encryption key itself and a
rotated SECRET_KEY makes the stored tokens unreadable: the owner must authorize again.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from koudai_flask.connectors.errors import AuthExpired
from koudai_flask.connectors.taobao.oauth import OAuthToken

SALT = b"koudai-taobao-tokens"
INFO = b"koudai taobao seller tokens v1"
SECRET_FIELDS = ("access_token", "refresh_token")


def token_cipher(secret_key: str | bytes) -> Fernet:
    """The Fernet cipher for ``secret_key`` (the app's SECRET_KEY)."""
    if not secret_key:
        raise ValueError("SECRET_KEY is empty: cannot encrypt Taobao tokens")
    raw = secret_key.encode("utf-8") if isinstance(secret_key, str) else secret_key
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=INFO).derive(raw)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_token(secret_key: str | bytes, token: str) -> str:
    """Ciphertext (URL-safe text) of one token."""
    return token_cipher(secret_key).encrypt(token.encode("utf-8")).decode("ascii")


def decrypt_token(secret_key: str | bytes, ciphertext: str) -> str:
    """The token back; a wrong SECRET_KEY or tampered text raises ``AuthExpired``."""
    try:
        return token_cipher(secret_key).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError) as exc:
        raise AuthExpired(
            "stored Taobao token cannot be decrypted (SECRET_KEY changed?); authorize again"
        ) from exc


def seal_token(secret_key: str | bytes, token: OAuthToken) -> dict[str, Any]:
    """A settings dict for ``token``: its two secrets encrypted, the rest as is."""
    return {
        "access_token": encrypt_token(secret_key, token.access_token),
        "refresh_token": encrypt_token(secret_key, token.refresh_token),
        "expires_in": token.expires_in,
        "re_expires_in": token.re_expires_in,
        "taobao_user_id": token.taobao_user_id,
        "taobao_user_nick": token.taobao_user_nick,
        "token_type": token.token_type,
    }


def open_token(secret_key: str | bytes, settings: Mapping[str, Any]) -> OAuthToken:
    """The :class:`OAuthToken` a :func:`seal_token` dict holds."""
    plain = dict(settings)
    for name in SECRET_FIELDS:
        plain[name] = decrypt_token(secret_key, str(settings.get(name) or ""))
    return OAuthToken.from_answer(plain)


__all__ = [
    "SALT",
    "decrypt_token",
    "encrypt_token",
    "open_token",
    "seal_token",
    "token_cipher",
]
