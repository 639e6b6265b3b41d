"""The wire side of outbound webhooks: which URLs may be called, the signed body, one POST.

Plain functions over plain values (no database). Every request goes to an address checked
just before it is made: the host is resolved, every address it resolves to must be public
(unless ``KOUDAI_WEBHOOKS_ALLOW_PRIVATE``), and the connection goes to the checked address,
so a DNS answer that changes between the check and the connection cannot redirect it.

Signature (version 1)::

    Koudai-Webhook-Timestamp: <unix seconds>
    Koudai-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

The secret is the subscription's secret as UTF-8; the body is signed byte for byte as sent.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from koudai_flask import __version__
from koudai_flask.errors import ValidationError

ID_HEADER = "Koudai-Webhook-Id"
TIMESTAMP_HEADER = "Koudai-Webhook-Timestamp"
SIGNATURE_HEADER = "Koudai-Webhook-Signature"
EVENT_HEADER = "Koudai-Webhook-Event"
SIGNATURE_VERSION = "v1"
# Seconds a receiver should accept a timestamp away from its own clock (replay window).
TOLERANCE = 300
MAX_URL_LENGTH = 2000
EXCERPT = 1000  # characters of a receiver's answer kept in the delivery log
# Certificates of HTTPS receivers are checked against this: True for the system's CAs, or
# the path of a CA bundle (tests point it at their own CA).
TLS_VERIFY: bool | str = True
# 408 Request Timeout and 429 Too Many Requests are the 4xx answers worth trying again.
RETRYABLE_4XX = frozenset({408, 429})

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(ValidationError):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where the connection goes and what the request names."""

    url: str
    scheme: str
    host: str
    port: int
    address: str  # the checked address the connection is made to


@dataclass(frozen=True)
class AttemptResult:
    """What one POST came to. ``status`` is None when no HTTP answer arrived."""

    status: int | None
    body: str | None
    duration_ms: int
    error: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Worth another attempt: no answer, a 3xx or 5xx, a 408 or a 429 (not another 4xx)."""
        if self.status is None:
            return True
        if 400 <= self.status < 500:
            return self.status in RETRYABLE_4XX
        return not self.ok


# -- URLs ------------------------------------------------------------------------------------


def parse_url(url: Any) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL, or ``ValidationError``."""

    def refuse(problem: str, reason: str) -> ValidationError:
        detail = {"most": MAX_URL_LENGTH} if reason == "url_long" else None
        return ValidationError(
            f"webhook URL {problem}", {"url": [problem]}, reason=reason, detail=detail
        )

    if not isinstance(url, str) or not url.strip():
        raise refuse("is required", "url_required")
    if len(url) > MAX_URL_LENGTH:
        raise refuse(f"must be at most {MAX_URL_LENGTH} characters", "url_long")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise refuse("must not contain spaces or control characters", "url_spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("is not a valid URL", "url_invalid") from None
    if parts.scheme not in ("http", "https"):
        raise refuse("must start with https:// or http://", "url_scheme")
    if not parts.hostname:
        raise refuse("must name a host", "url_invalid")
    if parts.username is not None or parts.password is not None:
        raise refuse(
            "must not carry a user name or password; sign requests with the secret",
            "url_credentials",
        )
    if parts.fragment:
        raise refuse("must not have a #fragment", "url_fragment")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refusal(address: Address) -> str | None:
    """Why webhooks may not call ``address`` (None when it is a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified or address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError(
            f"webhook URL: the host {host!r} cannot be resolved ({exc})",
            {"url": ["unresolvable host"]},
            reason="url_unresolvable",
            detail={"host": host},
        ) from None
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


def check_url(url: str, *, allow_private: bool) -> Target:
    """Parse and resolve ``url``; refuse it unless every address is public (or allowed)."""
    scheme, host, port = parse_url(url)
    addresses = resolve(host, port)
    if not addresses:
        raise ValidationError(
            f"webhook URL: {host!r} has no address",
            {"url": ["no address"]},
            reason="url_unresolvable",
            detail={"host": host},
        )
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise AddressRefused(
                    f"webhook URL: {host} is {reason} ({address}); only public addresses "
                    "may receive webhooks",
                    {"url": ["address refused"]},
                    reason="url_not_public",
                    detail={"host": host, "address": str(address)},
                )
    return Target(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]))


# -- the signed request ----------------------------------------------------------------------


def encode_body(event_id: str, topic: str, occurred_at: datetime, data: dict[str, Any]) -> bytes:
    """The JSON body: the same bytes on every attempt of one delivery."""
    created = occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {"id": event_id, "type": topic, "created_at": created, "data": data}
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def signed_headers(
    secret: str, event_id: str, topic: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": f"koudai-flask-webhooks/{__version__}",
        ID_HEADER: event_id,
        EVENT_HEADER: topic,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


class _PinnedTLS(HTTPAdapter):
    """HTTPS to a checked IP address, with SNI and certificate checks for the real host."""

    def __init__(self, host: str) -> None:
        self._host = host
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(server_hostname=self._host, assert_hostname=self._host)
        super().init_poolmanager(*args, **kwargs)


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> AttemptResult:
    """POST ``body`` to the checked address of ``target``; never follows a redirect."""
    parts = urlsplit(target.url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    default_port = 443 if target.scheme == "https" else 80
    netloc = address if target.port == default_port else f"{address}:{target.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host = target.host if ":" not in target.host else f"[{target.host}]"
    headers = {**headers, "Host": host if target.port == default_port else f"{host}:{target.port}"}
    started = time.monotonic()
    with requests.Session() as http:
        http.trust_env = False  # no proxy from the environment: the checked address is it
        if target.scheme == "https":
            http.mount("https://", _PinnedTLS(target.host))
        try:
            response = http.post(
                pinned,
                data=body,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
                verify=TLS_VERIFY,
            )
        except requests.RequestException as exc:
            return AttemptResult(None, None, _since(started), _describe(exc))
        try:
            raw = response.raw.read(EXCERPT * 4, decode_content=True) or b""
        except Exception as exc:  # noqa: BLE001 - a broken body still has its status
            raw = f"(answer body unreadable: {type(exc).__name__})".encode()
        finally:
            response.close()
    text = raw.decode("utf-8", "replace")[:EXCERPT]
    return AttemptResult(
        response.status_code,
        text,
        _since(started),
        None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
        _retry_after(response.headers.get("Retry-After")),
    )


def _since(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout: the receiver did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed: the receiver could not be reached"
    return f"request failed: {type(exc).__name__}"


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
