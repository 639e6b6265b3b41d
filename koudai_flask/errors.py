"""Typed errors raised by koudai_flask services, connectors and the extension.

Every error a caller can act on is a :class:`KoudaiError`; views map them to HTTP responses
and the CLI maps them to one line and exit code 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class KoudaiError(Exception):
    """Base class of every error koudai_flask raises on purpose."""

    http_status = 400
    # The refusal in one word, for a page to say it in its reader's language (with the
    # figures of ``detail``); None: the page shows ``message``.
    reason: str | None = None
    # The refusal's figures for a program (the API answer's ``detail``), when it has any.
    detail: dict[str, Any] | None = None

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if detail is not None:
            self.detail = dict(detail)


class ConfigError(KoudaiError):
    """A ``KOUDAI_*`` setting is unknown or has a bad value; raised by ``init_app``."""


class NotFound(KoudaiError):
    """A referenced object (SKU, order, channel, ...) does not exist."""

    http_status = 404


class ValidationError(KoudaiError):
    """Input failed validation; ``messages`` holds marshmallow's per-field messages.

    ``reason``, when set, names the refusal in one word (``account_exists``,
    ``reset_expired``, ...) so that a page can say it in the visitor's language, with the
    values of ``detail`` (``{"code": "TEE-S"}``) in it; ``message`` stays the English
    sentence for logs, the API and the CLI.
    """

    http_status = 422

    def __init__(
        self,
        message: str,
        messages: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, detail=detail)
        self.messages: dict[str, Any] = dict(messages or {})


class OutOfStock(KoudaiError):
    """Not enough available stock for a reservation or a decrease."""

    http_status = 409

    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(f"SKU {sku!r}: {requested} requested but only {available} available")
        self.sku = sku
        self.requested = requested
        self.available = available
        self.detail = {"sku": sku, "requested": requested, "available": available}


class InvalidTransition(KoudaiError):
    """An order action that the state machine does not allow from the current state."""

    http_status = 409

    def __init__(self, number: str, status: str, action: str) -> None:
        super().__init__(f"order {number}: cannot {action} an order that is {status}")
        self.number = number
        self.status = status
        self.action = action
        self.detail = {"number": number, "status": status, "action": action}


class SignatureError(KoudaiError):
    """An inbound callback or request carried a missing or wrong signature."""

    http_status = 401


class PermissionDenied(KoudaiError):
    """The acting staff member lacks the permission or the channel scope for this action."""

    http_status = 403
