"""What a ``KOUDAI_*`` value may be: the ``Setting`` record and the checks its table uses.

Kept apart from the table in :mod:`koudai_flask.config` so that the table reads as the list
of settings. A check returns the normalised value or raises ``ValueError`` with the rule;
``config.validate`` turns that into a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class Setting:
    default: Any
    help: str
    check: Callable[[Any], Any] | None = None  # returns the normalised value or raises ValueError


def url_prefix(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or value.endswith("/"):
        raise ValueError("must be a path that starts with '/' and does not end with '/'")
    return value


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}")
        return str(value)

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be True or False")
    return value


def seconds(value: Any) -> int:
    if isinstance(value, timedelta):
        value = int(value.total_seconds())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive number of seconds (an int or a timedelta)")
    return value


def optional_seconds(value: Any) -> int | None:
    return None if value is None else seconds(value)


def positive_seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("must be a positive number of seconds (int, float or timedelta)")
    return float(value)


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive integer")
    return value


def optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be a string or None")
    return value


def options_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a dict")
    return value


RFM_KEYS = ("recency_days", "frequency", "monetary")


def rfm_thresholds(value: Any) -> dict[str, list[int]]:
    """Four rising positive integers per RFM axis (the boundaries of scores 2 to 5)."""
    if not isinstance(value, dict) or set(value) != set(RFM_KEYS):
        raise ValueError(f"must be a dict with exactly the keys {', '.join(RFM_KEYS)}")
    checked: dict[str, list[int]] = {}
    for key in RFM_KEYS:
        steps = value[key]
        if (
            not isinstance(steps, list | tuple)
            or len(steps) != 4
            or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in steps)
            or list(steps) != sorted(set(steps))
        ):
            raise ValueError(f"{key!r} must be 4 rising positive integers")
        checked[key] = list(steps)
    return checked


def optional_dict(value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise ValueError("must be a dict or None")
    return value


def optional_names(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be None or a list of names")
    return list(value)


def hex_color(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValueError("must be a colour written #rrggbb")
    return value


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be an integer >= 0")
    return value


def optional_non_negative_int(value: Any) -> int | None:
    return None if value is None else non_negative_int(value)


def non_empty_str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def time_zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone name such as 'Asia/Shanghai'") from exc
    return str(value)


_PASSWORD_METHOD = re.compile(r"scrypt(:\d+:\d+:\d+)?|pbkdf2(:sha(256|512)(:\d+)?)?")


def password_method(value: Any) -> str:
    """A werkzeug password hash method with its cost, e.g. 'scrypt' or 'scrypt:32768:8:1'."""
    if not isinstance(value, str) or not _PASSWORD_METHOD.fullmatch(value):
        raise ValueError(
            "must be 'scrypt', 'scrypt:<n>:<r>:<p>', 'pbkdf2', 'pbkdf2:sha256' or "
            "'pbkdf2:sha256:<iterations>'"
        )
    return value
