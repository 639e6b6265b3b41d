"""The TOP transport: system parameters, signing, the POST, and typed errors (PROTOCOLS §1).

``TopClient.call("taobao.item.seller.get", fields=..., num_iid=...)`` returns the unwrapped
``item_seller_get_response`` object, or raises one of the connector errors so the job layer
knows whether to wait, re-authorize, retry or give up. It never logs the app secret or the
seller's session.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import requests

from koudai_flask.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.connectors.taobao.signing import SIGN_METHODS, sign

log = logging.getLogger(__name__)

PRODUCTION_GATEWAY = "https://eco.taobao.com/router/rest"
SANDBOX_GATEWAY = "https://gw.api.tbsandbox.com/router/rest"
# §1.3: timestamps are "yyyy-MM-dd HH:mm:ss" in GMT+8 (China has no daylight saving).
TOP_ZONE = timezone(timedelta(hours=8), "GMT+8")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# §1.5: 4–8 are the call-limit family; 7 is the one TOP sends with "ban will last" text.
_RATE_LIMIT_CODES = frozenset({4, 5, 6, 7, 8})
# 26 Missing Session, 27 Invalid Session: the seller must authorize the app again.
_AUTH_CODES = frozenset({26, 27})
_AUTH_SUB_CODES = frozenset(
    {
        "session-expired",
        "session-not-exist",
        "session-is-blank",
        "invalid-sessionkey",
        "isv.session-expired",
        "isv.invalid-sessionkey",
        "isv.session-not-exist",
    }
)
# 10 Service Currently Unavailable; 15 Remote Service Error without an isv.* sub_code.
_TEMPORARY_CODES = frozenset({10})
_BAN_SECONDS = re.compile(r"(\d+)\s*more\s+seconds?", re.IGNORECASE)
DEFAULT_RETRY_AFTER = 60.0


def format_time(moment: datetime) -> str:
    """An aware datetime as TOP writes it: GMT+8 wall time (§1.3)."""
    if moment.tzinfo is None:
        raise ValueError("TOP times must be timezone-aware (naive datetimes are ambiguous)")
    return moment.astimezone(TOP_ZONE).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """A TOP time ("yyyy-MM-dd HH:mm:ss", GMT+8) as an aware UTC datetime."""
    return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=TOP_ZONE).astimezone(UTC)


def format_param(value: object) -> str | None:
    """The wire text of an application parameter; ``None`` means "do not send it".

    Lists are comma lists (``fields``, ``num_iids``); dicts and nested lists are compact
    JSON with Chinese kept as is, as the official topsdk signs them (§1.9).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        if any(isinstance(part, dict | list) for part in value):
            return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
        return ",".join(str(part) for part in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def response_key(method: str) -> str:
    """``taobao.item.seller.get`` → ``item_seller_get_response`` (§1.6)."""
    name = method.removeprefix("taobao.")
    return name.replace(".", "_") + "_response"


def ban_seconds(sub_msg: str) -> float:
    """The N of "This ban will last for N more seconds"; sleep N+1 as §1.5 advises."""
    found = _BAN_SECONDS.search(sub_msg or "")
    return float(int(found.group(1)) + 1) if found else DEFAULT_RETRY_AFTER


def classify_error(method: str, error: Mapping[str, Any]) -> ConnectorError:
    """Map an ``error_response`` object to the connector error the job layer acts on."""
    try:
        code = int(error.get("code", 0))
    except (TypeError, ValueError):
        code = 0
    sub_code = str(error.get("sub_code") or "")
    sub_msg = str(error.get("sub_msg") or "")
    text = f"taobao {method}: error {code} {error.get('msg', '')}".strip()
    if sub_code:
        text += f" ({sub_code}: {sub_msg})" if sub_msg else f" ({sub_code})"
    if code in _RATE_LIMIT_CODES or sub_code.startswith("accesscontrol."):
        return RateLimited(text, ban_seconds(sub_msg))
    if code in _AUTH_CODES or sub_code in _AUTH_SUB_CODES:
        return AuthExpired(text)
    if sub_code.startswith("isp."):
        return TemporaryFailure(text)
    if sub_code.startswith("isv."):
        return PermanentFailure(text)
    if code in _TEMPORARY_CODES or (code in (15, 50) and not sub_code):
        return TemporaryFailure(text)
    return PermanentFailure(text)


class TopClient:
    """Signed calls to one TOP gateway for one app (and, optionally, one seller session)."""

    def __init__(
        self,
        gateway_url: str,
        app_key: str,
        app_secret: str,
        session: str | None = None,
        sign_method: str = "md5",
        timeout: float = 15.0,
        *,
        http: requests.Session | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if sign_method not in SIGN_METHODS:
            raise ValueError(f"unknown TOP sign_method {sign_method!r}; use one of {SIGN_METHODS}")
        self.gateway_url = gateway_url
        self.app_key = app_key
        self._app_secret = app_secret
        self._session = session
        self.sign_method = sign_method
        self.timeout = timeout
        self.http = http or requests.Session()
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        # Never the secret or the session: this ends up in logs and tracebacks.
        return f"TopClient({self.gateway_url!r}, app_key={self.app_key!r})"

    @property
    def has_session(self) -> bool:
        return bool(self._session)

    def with_session(self, session: str | None) -> TopClient:
        """The same app and connection pool, calling as another seller."""
        return TopClient(
            self.gateway_url,
            self.app_key,
            self._app_secret,
            session,
            self.sign_method,
            self.timeout,
            http=self.http,
            clock=self._clock,
        )

    def close(self) -> None:
        self.http.close()

    def system_params(self, method: str) -> dict[str, str]:
        """The §1.3 system parameters; ``simplify`` stays at its default (false)."""
        params = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": format_time(self._clock()),
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
        }
        if self._session:
            params["session"] = self._session
        return params

    def signed_form(self, method: str, params: Mapping[str, object]) -> dict[str, str]:
        """System and application parameters with their ``sign``, ready to post."""
        form = self.system_params(method)
        for key, value in params.items():
            text = format_param(value)
            if text is not None and text != "":
                form[key] = text
        form["sign"] = sign(form, self._app_secret, self.sign_method)
        return form

    def call(self, method: str, **params: object) -> dict[str, Any]:
        """Call ``method``; return its ``<name>_response`` object or raise a typed error."""
        form = self.signed_form(method, params)
        try:
            response = self.http.post(self.gateway_url, data=form, timeout=self.timeout)
        except requests.Timeout as exc:
            raise TemporaryFailure(f"taobao {method}: timed out after {self.timeout}s") from exc
        except requests.RequestException as exc:
            raise TemporaryFailure(f"taobao {method}: {type(exc).__name__}") from exc
        log.debug("taobao %s: HTTP %s", method, response.status_code)
        if response.status_code == 429:
            raise RateLimited(f"taobao {method}: HTTP 429", DEFAULT_RETRY_AFTER)
        if response.status_code >= 500:
            raise TemporaryFailure(f"taobao {method}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentFailure(f"taobao {method}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise TemporaryFailure(f"taobao {method}: answer is not JSON") from exc
        if not isinstance(body, dict):
            raise TemporaryFailure(f"taobao {method}: answer is not a JSON object")
        error = body.get("error_response")
        if isinstance(error, dict):
            raise classify_error(method, error)
        answer = body.get(response_key(method))
        if not isinstance(answer, dict):
            raise TemporaryFailure(f"taobao {method}: answer has no {response_key(method)}")
        return answer


__all__ = [
    "DEFAULT_RETRY_AFTER",
    "PRODUCTION_GATEWAY",
    "SANDBOX_GATEWAY",
    "TOP_ZONE",
    "TopClient",
    "ban_seconds",
    "classify_error",
    "format_param",
    "format_time",
    "parse_time",
    "response_key",
]
