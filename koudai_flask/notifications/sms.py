"""Text messages to buyers: the provider interface and the built-in log provider.

``KOUDAI_SMS = {"provider": "log"}`` uses :class:`LogSmsProvider` (the demo and tests: it
writes a masked line to the log and keeps the message in memory).
``{"provider": "package.module:Class", **options}`` builds ``Class(**options)``: any class
with ``send(phone, text) -> message id`` that raises the typed connector errors
(``RateLimited``, ``TemporaryFailure``, ``PermanentFailure``, ...) on failure.

A full phone number never reaches a log line or an error message: :func:`mask_phone`.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from flask import Flask, current_app

from koudai_flask.errors import ConfigError
from koudai_flask.models.base import utcnow

log = logging.getLogger("koudai_flask.notifications")

_EXTENSION = "koudai_sms"
PREVIEW_LENGTH = 20
_build_lock = threading.Lock()


@runtime_checkable
class SmsProvider(Protocol):
    """Sends one text message; returns the provider's message id."""

    def send(self, phone: str, text: str) -> str: ...


def mask_phone(phone: str) -> str:
    """``13800138000`` → ``138****8000``: enough to recognise, not enough to dial."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * len(digits)


def mask_phones_in(text: str) -> str:
    """Mask every run of 7 or more digits (a phone number) inside free text."""
    return re.sub(r"\+?\d[\d -]{5,}\d", lambda m: mask_phone(m.group(0)), text)


def describe_error(exc: BaseException) -> str:
    """An error as a log line and a ``last_error`` column keep it: its kind and message,
    every phone number masked, at most 500 characters."""
    return mask_phones_in(f"{type(exc).__name__}: {exc}")[:500]


def preview(text: str) -> str:
    """The first characters of a message, for a log line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[:PREVIEW_LENGTH] + "…"


@dataclass(frozen=True)
class SentSms:
    phone: str
    text: str
    message_id: str
    sent_at: datetime = field(default_factory=utcnow)


class LogSmsProvider:
    """Writes each message to the log (phone masked) and keeps it in :attr:`sent`.

    For the demo and tests: nothing leaves the machine. The list lives as long as the app.
    """

    def __init__(self, **options: Any) -> None:
        if options:
            raise ConfigError(
                f"KOUDAI_SMS: the log provider takes no options, got {', '.join(sorted(options))}"
            )
        self.sent: list[SentSms] = []
        self._lock = threading.Lock()

    def send(self, phone: str, text: str) -> str:
        message_id = f"log-{uuid.uuid4().hex[:20]}"
        log.info("SMS to %s: %s", mask_phone(phone), preview(text))
        with self._lock:
            self.sent.append(SentSms(phone=phone, text=text, message_id=message_id))
        return message_id


def build_provider(settings: Mapping[str, Any]) -> SmsProvider:
    """The provider that ``KOUDAI_SMS`` names, built with the rest of its settings."""
    options = dict(settings)
    name = options.pop("provider", None)
    if name == "log":
        return LogSmsProvider(**options)
    if not isinstance(name, str) or ":" not in name:
        raise ConfigError(
            f"KOUDAI_SMS['provider'] must be 'log' or 'package.module:Class', got {name!r}"
        )
    module_name, _, class_name = name.partition(":")
    try:
        provider_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"KOUDAI_SMS: cannot import {name!r} ({exc})") from None
    provider = provider_class(**options)
    if not isinstance(provider, SmsProvider):
        raise ConfigError(f"KOUDAI_SMS: {name} has no send(phone, text) method")
    return provider


def get_provider(app: Flask | None = None) -> SmsProvider | None:
    """This app's SMS provider (built once, so the log provider keeps its messages)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["KOUDAI_SMS"]
    if settings is None:
        return None
    with _build_lock:  # two first sends at once must share one provider
        cached = app.extensions.get(_EXTENSION)
        if cached is not None and cached[0] == settings:
            provider: SmsProvider = cached[1]
            return provider
        provider = build_provider(settings)
        app.extensions[_EXTENSION] = (dict(settings), provider)
        return provider
