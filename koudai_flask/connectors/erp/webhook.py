"""The generic HTTP ERP profile (``kind="webhook_erp"``): signed JSON events both ways.

For in-house ERPs that speak neither Jushuitan nor Tryton: we POST our paid orders to their
``order_url``, and they POST stock counts and shipments to our hooks. One signature scheme
covers both directions.

Wire protocol (version 1)
-------------------------

Every event is one HTTP ``POST`` with a JSON object body (UTF-8) and these headers::

    Content-Type: application/json
    X-Koudai-Timestamp: 1767225600            unix seconds, ASCII digits only
    X-Koudai-Event-Id: order.paid:K20260101   the body's "event_id", repeated for logs
    X-Koudai-Signature: sha256=<64 lowercase hex digits>

The signature is ``HMAC-SHA256(key, message)`` in lowercase hex, where ``key`` is the
channel's shared ``secret`` encoded as UTF-8 and ``message`` is the exact bytes::

    <X-Koudai-Timestamp value as ASCII> 0x2E (".") <the raw request body, byte for byte>

The body is signed as sent: a receiver verifies the bytes it read, before any JSON parsing,
and never re-serialises. A receiver refuses (HTTP 401) a missing or malformed header, a
signature that does not match, and a timestamp more than 300 seconds before or after its
own clock. Senders give each distinct event a new id, and re-send a failed event (network
error or 5xx) with the same id and a fresh timestamp and signature. Our hooks refuse (HTTP
409) an ``event_id`` they have already taken, which the sender counts as delivered.

Events we send (to ``order_url``; the answer must be a 2xx with ``{"id": "<their id>"}``,
and a repeated ``event_id`` must get the same id again, not a 409: we need that id)::

    {"event_id": "order.paid:<number>", "type": "order.paid",
     "order": {"number", "channel", "placed_at" (ISO 8601, UTC), "currency": "CNY",
               "total", "shipping_fee" (integer fen),
               "lines": [{"sku", "name", "quantity", "unit_price"}], "address", "buyer"}}

Events they send (to ``<hooks prefix>/erp/<channel name>/stock`` and ``.../shipment``) are
described in :mod:`koudai_flask.connectors.erp.webhook_views`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import requests

from koudai_flask.connectors.base import ADOPT, PUSH_ORDER, Connector, OrderExport
from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.errors import SignatureError, ValidationError

TIMESTAMP_HEADER = "X-Koudai-Timestamp"
SIGNATURE_HEADER = "X-Koudai-Signature"
EVENT_ID_HEADER = "X-Koudai-Event-Id"
SIGNATURE_SCHEME = "sha256="
# Seconds a timestamp may differ from the receiver's clock, either way.
TOLERANCE = 300
DEFAULT_TIMEOUT = 10.0
# A 429 without a usable Retry-After waits this long.
DEFAULT_RETRY_AFTER = 60.0
CURRENCY = "CNY"


# -- signing ---------------------------------------------------------------------------------


class HeaderSource(Protocol):
    """A dict of headers, or werkzeug's ``Headers`` (what ``request.headers`` is)."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def signature(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """Lowercase hex ``HMAC-SHA256(secret, timestamp + "." + body)`` (see the module doc)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str | bytes, body: bytes, event_id: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of one event: JSON content type, timestamp, event id and signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        EVENT_ID_HEADER: event_id,
        SIGNATURE_HEADER: SIGNATURE_SCHEME + signature(secret, stamp, body),
    }


def verify(
    secret: str | bytes,
    headers: HeaderSource,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE,
) -> int:
    """Check an inbound event's signature and freshness; returns its timestamp.

    Raises :class:`~koudai_flask.errors.SignatureError` naming what is wrong. Header names
    are matched case-insensitively; the comparison of signatures is constant-time.
    """
    if not secret:
        raise SignatureError("no secret is configured to verify this event with")
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    given = lowered.get(SIGNATURE_HEADER.lower(), "").strip()
    if not stamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header (unix seconds)")
    if not given:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header (sha256=<hex>)")
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds in ASCII digits")
    if not given.startswith(SIGNATURE_SCHEME):
        raise SignatureError(f"{SIGNATURE_HEADER} must read sha256=<64 hex digits>")
    expected = signature(secret, stamp, body)
    if not hmac.compare_digest(given[len(SIGNATURE_SCHEME) :].lower().encode(), expected.encode()):
        raise SignatureError(
            f"{SIGNATURE_HEADER} does not match the body and timestamp for this channel's secret"
        )
    # Checked after the signature, so "stale" always means an authentic but old (or replayed)
    # event, or a clock off by more than the tolerance.
    skew = int(stamp) - int(time.time() if now is None else now)
    if abs(skew) > tolerance:
        side = "ahead of" if skew > 0 else "behind"
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {abs(skew)} s {side} our clock (tolerance ±{tolerance} s);"
            " re-send the event with a fresh timestamp and signature"
        )
    return int(stamp)


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The compact UTF-8 JSON body of an event; these bytes are what gets signed."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=_json_value).encode(
        "utf-8"
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def order_event(order: OrderExport) -> dict[str, Any]:
    """The ``order.paid`` event of one of our orders; its id is stable per order number."""
    return {
        "event_id": f"order.paid:{order.number}",
        "type": "order.paid",
        "order": {
            "number": order.number,
            "channel": order.channel,
            "placed_at": order.placed_at,
            "currency": CURRENCY,
            "total": order.total,
            "shipping_fee": order.shipping_fee,
            "lines": [dict(line) for line in order.lines],
            "address": dict(order.address),
            "buyer": order.buyer,
        },
    }


# -- the connector ---------------------------------------------------------------------------


class WebhookErpConnector(Connector):
    """An in-house ERP reached by signed webhooks: we push orders, it pushes stock and parcels.

    Settings: ``order_url`` (where our ``order.paid`` events go), ``secret`` (shared, signs
    both directions) and optionally ``timeout`` (seconds, default 10).
    """

    kind: ClassVar[str] = "webhook_erp"
    # Stock counts and shipments arrive by webhook (webhook_views), so nothing is fetched.
    capabilities: ClassVar[frozenset[str]] = frozenset({PUSH_ORDER})
    stock_policy: ClassVar[str] = ADOPT
    required_settings: ClassVar[tuple[str, ...]] = ("order_url", "secret")
    secret_settings: ClassVar[tuple[str, ...]] = ("secret",)

    def __init__(self, name: str, settings: Mapping[str, Any], *, secret_key: str = "") -> None:
        super().__init__(name, settings, secret_key=secret_key)
        self._http: requests.Session | None = None

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        super().check_settings(settings)
        url = urlsplit(str(settings["order_url"]))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValidationError(
                "order_url must be an absolute http(s) URL", {"order_url": ["not an http URL"]}
            )
        timeout = settings.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValidationError(
                "timeout must be a positive number of seconds", {"timeout": ["must be > 0"]}
            )

    @property
    def timeout(self) -> float:
        return float(self.settings.get("timeout") or DEFAULT_TIMEOUT)

    @property
    def http(self) -> requests.Session:
        if self._http is None:
            self._http = requests.Session()
        return self._http

    def push_order(self, order: OrderExport) -> str:
        """POST the order's signed ``order.paid`` event; returns the ERP's id for it.

        Safe to repeat: the event id is the same every time, and the ERP answers a known
        event with the id it gave the first time.
        """
        event = order_event(order)
        body = encode_event(event)
        headers = signed_headers(str(self.settings["secret"]), body, event["event_id"])
        url = str(self.settings["order_url"])
        what = f"{self.name}: order {order.number}"
        try:
            # Redirects are not followed: a signed event goes to the configured URL only.
            response = self.http.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.Timeout as exc:
            raise TemporaryFailure(f"{what} timed out after {self.timeout:g}s") from exc
        except requests.RequestException as exc:
            raise TemporaryFailure(f"{what} could not be sent: {type(exc).__name__}") from exc
        return _their_id(what, response)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def _their_id(what: str, response: requests.Response) -> str:
    """Map the ERP's answer to its id for the order, or to a typed connector error."""
    status = response.status_code
    if status == 429:
        retry_after = _retry_after(response.headers.get("Retry-After"))
        raise RateLimited(f"{what}: throttled by the ERP (429)", retry_after=retry_after)
    if status in (401, 403):
        raise AuthExpired(
            f"{what}: the ERP refused our signature ({status}); check the channel's secret"
        )
    if status >= 500:
        raise TemporaryFailure(f"{what}: the ERP answered HTTP {status}")
    if status >= 300:
        raise PermanentFailure(
            f"{what}: the ERP refused the event (HTTP {status}){_said(response)}"
        )
    try:
        answer = response.json()
    except ValueError as exc:
        raise TemporaryFailure(f"{what}: the ERP's answer is not JSON") from exc
    their_id = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(their_id, bool) or not isinstance(their_id, str | int) or their_id == "":
        raise PermanentFailure(f'{what}: the ERP answered {status} without an "id"')
    return str(their_id)


def _said(response: requests.Response) -> str:
    """The ERP's own error message, shortened, for the dead letter a person will read."""
    try:
        answer = response.json()
    except ValueError:
        return ""
    message = answer.get("message") or answer.get("error") if isinstance(answer, dict) else None
    return f": {str(message)[:200]}" if message else ""


def _retry_after(header: str | None) -> float:
    """Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not header:
        return DEFAULT_RETRY_AFTER
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE",
    "WebhookErpConnector",
    "encode_event",
    "order_event",
    "signature",
    "signed_headers",
    "verify",
]
