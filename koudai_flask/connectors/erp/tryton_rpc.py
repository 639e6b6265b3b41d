"""trytond's JSON-RPC over HTTP (PROTOCOLS §6.7): the transport under the Tryton adapter.

See ``koudai_flask.connectors.erp.tryton`` for how failures map to connector errors.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import requests

from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)

# Server exceptions whose message means "try again": trytond already retries a busy
# database a few times before it gives up and reports the error.
_TRANSIENT_MARKERS = ("database is locked", "could not serialize", "deadlock", "timeout")
_DEFAULT_RETRY_AFTER = 60.0


# --- JSON codec -------------------------------------------------------------------------
# trytond encodes the types JSON lacks as {"__class__": ..., ...} objects
# (trytond/protocols/jsonrpc.py); the client must speak the same dialect both ways.


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, bytes):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_encode(v) for v in value]
    return value


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "datetime":
        # Tryton stores and sends naive UTC datetimes.
        return datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj["hour"],
            obj["minute"],
            obj["second"],
            obj["microsecond"],
            tzinfo=UTC,
        )
    if kind == "date":
        return date(obj["year"], obj["month"], obj["day"])
    if kind == "time":
        return time(obj["hour"], obj["minute"], obj["second"], obj["microsecond"])
    if kind == "timedelta":
        return timedelta(seconds=obj["seconds"])
    if kind == "bytes":
        return base64.b64decode(obj["base64"])
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    return obj


# --- the client ---------------------------------------------------------------------------


class TrytonRpc:
    """A JSON-RPC session with one Tryton database: login, calls, context, errors."""

    def __init__(
        self,
        base_url: str,
        database: str,
        username: str,
        password: str,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.database = database
        self.username = username
        self.password = password
        self.timeout = timeout
        self.http = session or requests.Session()
        self.user_id: int | None = None
        self.session_token: str | None = None
        self._context: dict[str, Any] | None = None
        self._request_id = 0

    @property
    def rpc_url(self) -> str:
        """trytond 8.x serves JSON-RPC on ``/<db>/rpc/`` (6.x-7.x used ``/<db>/``)."""
        return f"{self.base_url}/{self.database}/rpc/"

    # -- transport ---------------------------------------------------------------------

    def _post(self, method: str, params: Sequence[Any], authenticated: bool) -> Any:
        self._request_id += 1
        body = {"id": self._request_id, "method": method, "params": _encode(list(params))}
        headers = {"Content-Type": "application/json"}
        if authenticated and self.session_token is not None:
            token = f"{self.username}:{self.user_id}:{self.session_token}"
            headers["Authorization"] = "Session " + base64.b64encode(token.encode()).decode()
        try:
            response = self.http.post(
                self.rpc_url, data=json.dumps(body), headers=headers, timeout=self.timeout
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TemporaryFailure(f"Tryton at {self.base_url} is unreachable: {exc}") from exc
        except requests.RequestException as exc:
            raise TemporaryFailure(f"Tryton call {method} failed: {exc}") from exc
        status = response.status_code
        if status == 401:
            raise _SessionRejected(method)
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise RateLimited(f"Tryton throttled {method}", retry_after=retry_after)
        if status == 403:
            raise PermanentFailure(f"Tryton refused {method}: not exposed over RPC (403)")
        if status == 404:
            raise PermanentFailure(f"Tryton has no database {self.database!r} (404)")
        if status >= 500:
            raise TemporaryFailure(f"Tryton answered {status} to {method}")
        if status >= 400:
            raise PermanentFailure(f"Tryton answered {status} to {method}")
        try:
            payload = json.loads(response.text, object_hook=_decode)
        except ValueError as exc:
            raise TemporaryFailure(f"Tryton sent a non-JSON answer to {method}") from exc
        if not isinstance(payload, dict):
            raise PermanentFailure(f"Tryton sent an unexpected answer to {method}")
        if payload.get("error") is not None:
            raise _error(method, payload["error"])
        return payload.get("result")

    def login(self) -> None:
        """Open a session (``common.db.login``) and load the user's context."""
        params = [self.username, {"password": self.password}]
        try:
            result = self._post("common.db.login", params, authenticated=False)
        except _SessionRejected as exc:
            raise AuthExpired(f"Tryton refused the login of {self.username!r}") from exc
        if not result:
            raise AuthExpired(f"Tryton refused the login of {self.username!r}")
        self.user_id = int(result[0])
        self.session_token = str(result[1])
        self._context = None
        self._context = dict(self.call("model.res.user.get_preferences", True, {}))

    def logout(self) -> None:
        """Close the session on the server (``common.db.logout``)."""
        if self.session_token is None:
            return
        try:
            self._post("common.db.logout", [], authenticated=True)
        except _SessionRejected:
            pass
        finally:
            self.session_token = None
            self.user_id = None
            self._context = None

    def call(self, method: str, *params: Any) -> Any:
        """One RPC call with the raw params; logs in first, and again once on a 401."""
        if self.session_token is None:
            self.login()
        try:
            return self._post(method, params, authenticated=True)
        except _SessionRejected:
            self.session_token = None
            self.login()
        try:
            return self._post(method, params, authenticated=True)
        except _SessionRejected as exc:
            raise AuthExpired(f"Tryton rejected a fresh session for {method}") from exc

    @property
    def context(self) -> dict[str, Any]:
        """The user's preferences (company, language...) that every model call carries."""
        if self._context is None:
            self.login()
        assert self._context is not None
        return self._context

    def model(
        self, model: str, method: str, *args: Any, context: Mapping[str, Any] | None = None
    ) -> Any:
        """``model.<model>.<method>`` with ``args`` and the user's context (plus ``context``)."""
        ctx = dict(self.context)
        if context:
            ctx.update(context)
        return self.call(f"model.{model}.{method}", *args, ctx)

    def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: Sequence[str],
        *,
        order: list[list[str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """``search_read(domain, offset=0, limit=None, order, fields)`` as a list of dicts."""
        result = self.model(
            model, "search_read", domain, 0, None, order, list(fields), context=context
        )
        return list(result)


class TrytonWarning(PermanentFailure):
    """A ``UserWarning``: Tryton wants a person to confirm (e.g. stock moves without origin).

    A retry fails the same way unless someone accepts the warning first: Tryton's own client
    creates a ``res.user.warning`` with ``warning_name`` and repeats the call
    (``TrytonClient.accept_warning``). Sync jobs never do that on their own.
    """

    def __init__(self, message: str, warning_name: str) -> None:
        super().__init__(message)
        self.warning_name = warning_name


class _SessionRejected(Exception):
    """HTTP 401: the session is missing, expired or logged out (internal to the client)."""


def _retry_after(header: str | None) -> float:
    try:
        return max(float(header), 0.0) if header else _DEFAULT_RETRY_AFTER
    except ValueError:
        return _DEFAULT_RETRY_AFTER


def _error(method: str, error: Any) -> Exception:
    """Map trytond's ``error`` member to a typed connector error."""
    if isinstance(error, list | tuple) and error:
        kind = str(error[0])
        detail = error[1] if len(error) > 1 else None
    else:
        kind, detail = str(error), None
    if kind == "UserWarning" and isinstance(detail, list | tuple) and len(detail) > 1:
        return TrytonWarning(f"Tryton asks to confirm {method}: {detail[1]}", str(detail[0]))
    if kind in {"UserError", "UserWarning"}:
        message = detail[0] if isinstance(detail, list | tuple) and detail else detail
        return PermanentFailure(f"Tryton refused {method}: {message}")
    if kind == "LoginException":
        return AuthExpired(f"Tryton asks to log in again for {method}")
    if kind == "RateLimitException":
        return RateLimited(f"Tryton throttled {method}", retry_after=_DEFAULT_RETRY_AFTER)
    if kind == "ConcurrencyException":
        return TemporaryFailure(f"Tryton reported a concurrent change during {method}")
    if any(marker in kind.lower() for marker in _TRANSIENT_MARKERS):
        return TemporaryFailure(f"Tryton could not run {method} now: {kind}")
    return PermanentFailure(f"Tryton failed {method}: {kind}")


__all__ = ["TrytonRpc", "TrytonWarning"]
