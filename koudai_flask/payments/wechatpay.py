"""Placeholder until the provider lands: not configured, no routes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

SETTING = "KOUDAI_WECHATPAY"


def validate_settings(value: Any) -> dict[str, Any]:
    return dict(value)


def build_provider(app: Flask) -> None:
    return None


def register_routes(bp: Blueprint) -> None:
    return None
