"""The ``KOUDAI_*`` settings: their defaults, their validation and the one accessor.

A host sets them in ``app.config``; :mod:`koudai_flask.config_settings` lists them.
``init_app`` fills in defaults with ``setdefault`` and then validates every ``KOUDAI_`` key:
an unknown key (a typo) or a bad value raises :class:`~koudai_flask.errors.ConfigError`
with a message that names the fix. The checks of single values live in
:mod:`koudai_flask.config_checks`, those of a connector's dict (WeChat, Weibo, Kuaidi100) in
that connector's ``settings`` module.
"""

from __future__ import annotations

import difflib
from typing import Any

from flask import current_app

from koudai_flask.config_checks import Setting
from koudai_flask.config_settings import SETTINGS
from koudai_flask.connectors.logistics.settings import validate_kuaidi100
from koudai_flask.errors import ConfigError


def validate(config: dict[str, Any]) -> None:
    """Fill in defaults and check every ``KOUDAI_`` key of ``config`` in place."""
    for key in [k for k in config if k.startswith("KOUDAI_")]:
        if key not in SETTINGS:
            close = difflib.get_close_matches(key, SETTINGS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"unknown setting {key}{hint} (known KOUDAI_ settings are listed in the README)"
            )
    for key, setting in SETTINGS.items():
        config.setdefault(key, setting.default)
        if setting.check is None:
            continue
        try:
            config[key] = setting.check(config[key])
        except ValueError as exc:
            raise ConfigError(f"{key} = {config[key]!r} {exc}") from None


def config_value(name: str) -> Any:
    """Read ``KOUDAI_<name>`` of the current app; a name that is not a setting raises."""
    key = name if name.startswith("KOUDAI_") else f"KOUDAI_{name}"
    if key not in SETTINGS:
        raise KeyError(f"{key} is not a koudai setting")
    return current_app.config[key]


__all__ = ["SETTINGS", "Setting", "config_value", "validate", "validate_kuaidi100"]
