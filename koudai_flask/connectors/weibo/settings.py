"""``KOUDAI_WEIBO``: the brand account's access to the Weibo open API (PROTOCOLS §7).

``access_token`` is the brand account's OAuth2 token; ``uid`` its user id (its own posts
and comments are not monitored). Keyword search runs only with ``search_url``, the
commercial data API (``https://c.api.weibo.com``), with ``search_token`` when that API has
a token of its own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from koudai_flask.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "uid": None,
    "api_url": "https://api.weibo.com",
    "search_url": None,
    "search_token": None,
    "poll_interval": 300,
    "count": 50,
    "max_pages": 5,
    "timeout": 10,
}


def _http_url(value: Any) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


def validate_weibo(value: Any) -> dict[str, Any] | None:
    """Check ``KOUDAI_WEIBO`` and fill in its defaults; ``None`` turns monitoring off."""
    if value is None:
        return None

    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"KOUDAI_WEIBO: {problem}")

    if not isinstance(value, dict):
        raise refuse("must be a dict (access_token, uid, ...) or None")
    unknown = sorted(set(value) - {"access_token", *DEFAULTS})
    if unknown:
        raise refuse(f"unknown key(s) {', '.join(map(repr, unknown))}")
    settings = {**DEFAULTS, **value}
    if not isinstance(settings.get("access_token"), str) or not settings["access_token"]:
        raise refuse("'access_token' is required: the brand account's OAuth2 token")
    for name in ("uid", "search_token"):
        if settings[name] is not None and (not isinstance(settings[name], str | int)):
            raise refuse(f"{name!r} must be a string or None")
    if settings["uid"] is not None:
        settings["uid"] = str(settings["uid"])
    if not _http_url(settings["api_url"]):
        raise refuse("'api_url' must be an http(s) URL")
    if settings["search_url"] is not None and not _http_url(settings["search_url"]):
        raise refuse("'search_url' must be an http(s) URL or None")
    for name, top in (("poll_interval", 86400), ("count", 200), ("max_pages", 50)):
        number = settings[name]
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number <= top:
            raise refuse(f"{name!r} must be an integer from 1 to {top}")
    timeout = settings["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise refuse("'timeout' must be a positive number of seconds")
    for name in ("api_url", "search_url"):
        if settings[name]:
            settings[name] = settings[name].rstrip("/")
    return settings
