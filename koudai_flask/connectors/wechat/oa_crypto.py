"""WeChat Official Account server signatures and safe-mode (AES) messages, PROTOCOLS §3.1.

- URL and message signature: ``sha1("".join(sorted([token, timestamp, nonce])))``, hex.
- Safe mode (``encrypt_type=aes``): ``msg_signature = sha1(sorted([token, timestamp, nonce,
  Encrypt]))``; ``Encrypt`` is Base64 of AES-256-CBC with key = Base64-decode of the
  43-character EncodingAESKey plus ``=``, IV = the key's first 16 bytes, PKCS#7 padded to a
  32-byte block, over ``16 random bytes + 4-byte big-endian length + message + appid``.

Only the cipher and the padding come from ``cryptography``; the layout is WeChat's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from koudai_flask.errors import SignatureError

# WeChat pads to 32 bytes (the AES-256 key length), not to AES's 16-byte block.
PAD_BITS = 256
AES_KEY_LENGTH = 43


def sha1_signature(*parts: str) -> str:
    """The lowercase hex SHA-1 of the parts, sorted and joined (§3.1)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(token: str, signature: str, timestamp: str, nonce: str) -> None:
    """Raise :class:`SignatureError` unless ``signature`` signs ``timestamp`` and ``nonce``."""
    if not signature or not timestamp or not nonce:
        raise SignatureError("signature, timestamp and nonce are required")
    expected = sha1_signature(token, timestamp, nonce)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise SignatureError("signature does not match")


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (ValueError when malformed)."""
    if len(encoding_aes_key) != AES_KEY_LENGTH or not encoding_aes_key.isalnum():
        raise ValueError("an EncodingAESKey is 43 letters and digits")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("an EncodingAESKey is Base64 without its final '='") from exc
    if len(key) != 32:
        raise ValueError("an EncodingAESKey decodes to 32 bytes")
    return key


@dataclass(frozen=True)
class MessageCrypto:
    """Safe-mode encryption of one Official Account (its token, EncodingAESKey, appid)."""

    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    appid: str

    @property
    def key(self) -> bytes:
        return decode_aes_key(self.encoding_aes_key)

    def _cipher(self) -> Cipher[modes.CBC]:
        key = self.key
        return Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def msg_signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return sha1_signature(self.token, timestamp, nonce, encrypted)

    def check_msg_signature(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str
    ) -> None:
        if not msg_signature or not timestamp or not nonce:
            raise SignatureError("msg_signature, timestamp and nonce are required")
        expected = self.msg_signature(timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), msg_signature.strip().lower().encode()):
            raise SignatureError("msg_signature does not match")

    def encrypt(self, message: str, *, random_prefix: bytes | None = None) -> str:
        """``Encrypt`` for ``message``: Base64 of the AES-CBC ciphertext (§3.1 layout)."""
        prefix = os.urandom(16) if random_prefix is None else random_prefix
        if len(prefix) != 16:
            raise ValueError("the random prefix is 16 bytes")
        body = message.encode()
        plain = prefix + struct.pack(">I", len(body)) + body + self.appid.encode()
        padder = padding.PKCS7(PAD_BITS).padder()
        padded = padder.update(plain) + padder.finalize()
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        """The message inside ``Encrypt``; :class:`SignatureError` if it is not for us."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("Encrypt is not Base64") from None
        if not data or len(data) % 16:
            raise SignatureError("Encrypt is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(PAD_BITS).unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise SignatureError("Encrypt does not decrypt with this EncodingAESKey") from None
        if len(plain) < 20:
            raise SignatureError("Encrypt is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        body, appid = plain[20 : 20 + length], plain[20 + length :]
        if len(body) != length or not hmac.compare_digest(appid, self.appid.encode()):
            raise SignatureError("Encrypt was made for another appid")
        try:
            return body.decode()
        except UnicodeDecodeError:
            raise SignatureError("Encrypt does not hold UTF-8 text") from None
