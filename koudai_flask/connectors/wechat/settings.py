"""``KOUDAI_WECHAT``: its check, and the Official Account server's part of it.

The same dict holds the API credentials (``appid``, ``secret``, ``api_url``, ...) used by
the OAuth login and the template messages, and the server settings of the Official
Account's "server configuration" page: ``token`` (3–32 letters or digits) and, for safe
mode, ``encoding_aes_key`` (43 letters or digits). ``subscribe_tag`` names the tag every
follower gets (``None``: none), and ``scene_tags`` maps a QR-code scene to the tag a
follower who subscribes or scans with it gets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from koudai_flask.connectors.wechat.oa_crypto import MessageCrypto, decode_aes_key
from koudai_flask.errors import ConfigError

DEFAULT_SUBSCRIBE_TAG = "wechat-follower"
_TOKEN = re.compile(r"[A-Za-z0-9]{3,32}")


def validate_wechat(value: Any) -> dict[str, Any] | None:
    """Check ``KOUDAI_WECHAT``; raises :class:`ConfigError` without echoing any secret."""
    if value is None:
        return None

    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"KOUDAI_WECHAT: {problem}")

    if not isinstance(value, dict):
        raise refuse("must be a dict (appid, secret, ...) or None")
    token = value.get("token")
    if token is not None and (not isinstance(token, str) or not _TOKEN.fullmatch(token)):
        raise refuse("'token' must be 3 to 32 letters or digits, as set in the Official Account")
    aes_key = value.get("encoding_aes_key")
    if aes_key is not None:
        if not isinstance(aes_key, str):
            raise refuse("'encoding_aes_key' must be a string")
        try:
            decode_aes_key(aes_key)
        except ValueError:
            raise refuse(
                "'encoding_aes_key' must be the 43 letters and digits WeChat shows"
            ) from None
        if token is None or not value.get("appid"):
            raise refuse("'encoding_aes_key' needs 'token' and 'appid' too (safe mode)")
    tag = value.get("subscribe_tag", DEFAULT_SUBSCRIBE_TAG)
    if tag is not None and (not isinstance(tag, str) or not tag.strip() or len(tag) > 40):
        raise refuse("'subscribe_tag' must be a tag name (1 to 40 characters) or None")
    scenes = value.get("scene_tags", {})
    if not isinstance(scenes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v and len(v) <= 40
        for k, v in scenes.items()
    ):
        raise refuse("'scene_tags' must map QR-code scene names to tag names")
    return value


@dataclass(frozen=True)
class ServerSettings:
    """What the ``/wechat/oa`` endpoint needs."""

    token: str = field(repr=False)
    appid: str
    crypto: MessageCrypto | None
    subscribe_tag: str | None
    scene_tags: dict[str, str]

    @classmethod
    def from_config(cls, value: dict[str, Any] | None) -> ServerSettings | None:
        """None unless ``KOUDAI_WECHAT`` has a server ``token``."""
        if not value or not value.get("token"):
            return None
        appid = str(value.get("appid") or "")
        aes_key = value.get("encoding_aes_key")
        return cls(
            token=str(value["token"]),
            appid=appid,
            crypto=MessageCrypto(str(value["token"]), aes_key, appid) if aes_key else None,
            subscribe_tag=value.get("subscribe_tag", DEFAULT_SUBSCRIBE_TAG),
            scene_tags=dict(value.get("scene_tags") or {}),
        )
