"""The payment provider interface every provider implements.

A provider speaks one payment protocol and nothing else: it starts a payment, turns a
verified notify into a :class:`PaymentNotice`, queries, closes and refunds. It never
changes an order itself; :mod:`koudai_flask.services.payments` applies what it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol, TypeVar

from flask import Flask

from koudai_flask.errors import ConfigError, KoudaiError

P = TypeVar("P")

# Both gateways read local times as Beijing time (UTC+8, no daylight saving), whatever the
# shop's own KOUDAI_TIMEZONE.
CHINA = timezone(timedelta(hours=8))


def cached_provider(
    app: Flask, setting: str, validate: Callable[[Any], Any], build: Callable[[Any], P]
) -> P | None:
    """The app's provider for ``setting``, built once per settings object; None when unset.

    Settings are checked again here (a host may replace them after init); a bad value is a
    ``ConfigError`` naming the setting.
    """
    settings = app.config.get(setting)
    if settings is None:
        return None
    key = f"koudai_provider:{setting}"
    cached = app.extensions.get(key)
    if cached is not None and cached[0] is settings:
        return cached[1]
    try:
        checked = validate(settings)
    except ValueError as exc:
        raise ConfigError(f"{setting}: {exc}") from None
    provider = build(checked)
    app.extensions[key] = (settings, provider)
    return provider


class PaymentGatewayError(KoudaiError):
    """The provider's gateway refused a request or could not be reached."""

    http_status = 502

    def __init__(self, message: str, *, code: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class PaymentRequest:
    """What a provider needs to start paying one order."""

    order_number: str
    amount: int  # fen
    description: str
    notify_url: str
    return_url: str
    client_ip: str = "127.0.0.1"
    # "jsapi" inside WeChat (needs openid), "h5" in other mobile browsers, "page" on desktop.
    scene: Literal["jsapi", "h5", "page"] = "h5"
    openid: str | None = None
    # When the order's stock reservation lapses: the provider stops taking the payment then,
    # so a buyer cannot pay for an order that was just cancelled for want of payment.
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PaymentAction:
    """What the buyer's browser does next to pay."""

    kind: Literal["redirect", "jsapi", "offline"]
    url: str | None = None
    # For "jsapi": the parameters handed to WeixinJSBridge's getBrandWCPayRequest.
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentNotice:
    """A verified statement from the provider that an order was paid (or not)."""

    provider: str
    order_number: str
    transaction_id: str
    amount: int  # fen
    paid: bool
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentStatus:
    order_number: str
    # paid | pending | closed | refunded | failed
    state: str
    transaction_id: str | None = None
    amount: int | None = None


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    # success | processing | failed
    status: str


class PaymentProvider(Protocol):
    name: str

    def start(self, request: PaymentRequest) -> PaymentAction: ...

    def parse_notify(self, headers: dict[str, str], body: bytes) -> PaymentNotice:
        """Verify and decode a notify; raise SignatureError or ValidationError if bad."""
        ...

    def query(self, order_number: str) -> PaymentStatus: ...

    def close(self, order_number: str) -> None: ...

    def refund(
        self, order_number: str, *, refund_no: str, amount: int, total: int, reason: str = ""
    ) -> RefundResult: ...
