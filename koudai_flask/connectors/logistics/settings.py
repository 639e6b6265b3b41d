"""``KOUDAI_KUAIDI100``: the Kuaidi100 enterprise account and how tracking runs (PROTOCOLS §5).

``customer`` and ``key`` are the account's; ``salt`` signs each push to ``callback_url``
(no push is accepted unsigned); ``poll_interval`` and ``poll_batch`` pace the polling of
shipments that have no push. Kept with the adapter, as the WeChat and Weibo settings are.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from koudai_flask.config_checks import positive_int
from koudai_flask.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "salt": None,
    "callback_url": None,
    "query_url": "https://poll.kuaidi100.com/poll/query.do",
    "subscribe_url": "https://poll.kuaidi100.com/poll",
    "timeout": 10,
    "poll_interval": 600,
    "poll_batch": 50,
}


def _http_url(value: Any) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


def validate_kuaidi100(value: Any) -> dict[str, Any] | None:
    """Check ``KOUDAI_KUAIDI100`` and fill in its defaults; ``None`` turns tracking off.

    Raises :class:`ConfigError` itself rather than ``ValueError``: ``validate`` would echo
    the whole value, and this one holds the account key and the callback salt.
    """
    if value is None:
        return None

    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"KOUDAI_KUAIDI100: {problem}")

    if not isinstance(value, dict):
        raise refuse("must be a dict (customer, key, ...) or None")
    unknown = sorted(set(value) - {"customer", "key", *DEFAULTS})
    if unknown:
        raise refuse(f"unknown key(s) {', '.join(map(repr, unknown))}")
    settings = {**DEFAULTS, **value}
    for name in ("customer", "key"):
        if not isinstance(settings.get(name), str) or not settings[name]:
            raise refuse(f"{name!r} is required: the {name} of your Kuaidi100 enterprise account")
    for name in ("query_url", "subscribe_url"):
        if not _http_url(settings[name]):
            raise refuse(f"{name!r} must be an http(s) URL")
    if settings["callback_url"] is not None:
        if not _http_url(settings["callback_url"]):
            raise refuse("'callback_url' must be an http(s) URL or None")
        # Without a salt Kuaidi100 sends pushes unsigned, and we accept no unsigned push.
        if not isinstance(settings["salt"], str) or not settings["salt"]:
            raise refuse("'salt' is required when 'callback_url' is set (it signs each push)")
    elif settings["salt"] is not None and not isinstance(settings["salt"], str):
        raise refuse("'salt' must be a string")
    timeout = settings["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise refuse("'timeout' must be a positive number of seconds")
    for name in ("poll_interval", "poll_batch"):
        try:
            settings[name] = positive_int(settings[name])
        except ValueError:
            raise refuse(f"{name!r} must be a positive integer") from None
    return settings
