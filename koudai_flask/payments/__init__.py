"""Payment providers: WeChat Pay API v3, Alipay and offline payment, behind one interface.

Each provider module (``koudai_flask.payments.<name>``) exposes:

- ``SETTING``: the config key holding its settings (``None`` when it needs none);
- ``validate_settings(value) -> dict``: raise ``ValueError`` naming the fix when bad;
- ``build_provider(app) -> PaymentProvider | None``: ``None`` when not configured;
- ``register_routes(bp)``: add its notify endpoint to the hooks blueprint.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from flask import Blueprint, Flask, current_app

from koudai_flask.errors import ConfigError, NotFound
from koudai_flask.payments.base import (
    PaymentAction,
    PaymentGatewayError,
    PaymentNotice,
    PaymentProvider,
    PaymentRequest,
    PaymentStatus,
    RefundResult,
)

PROVIDER_MODULES = ("wechatpay", "alipay", "offline")


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"koudai_flask.payments.{name}") for name in PROVIDER_MODULES]


def validate_settings(app: Flask) -> None:
    """Check each configured provider's settings at init; raise ConfigError naming the fix."""
    for module in _modules():
        key = getattr(module, "SETTING", None)
        if key is None or app.config.get(key) is None:
            continue
        try:
            app.config[key] = module.validate_settings(app.config[key])
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None


def register_routes(bp: Blueprint) -> None:
    for module in _modules():
        module.register_routes(bp)


def enabled(app: Flask | None = None) -> dict[str, PaymentProvider]:
    """The providers this app has configured, by name, in display order."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found: dict[str, PaymentProvider] = {}
    for module in _modules():
        provider = module.build_provider(app)
        if provider is not None:
            found[provider.name] = provider
    return found


def get_provider(name: str) -> PaymentProvider:
    provider = enabled().get(name)
    if provider is None:
        raise NotFound(f"payment provider {name!r} is not configured")
    return provider


__all__ = [
    "PaymentAction",
    "PaymentGatewayError",
    "PaymentNotice",
    "PaymentProvider",
    "PaymentRequest",
    "PaymentStatus",
    "RefundResult",
    "enabled",
    "get_provider",
    "register_routes",
    "validate_settings",
]
