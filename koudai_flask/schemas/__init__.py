"""Marshmallow schemas for service inputs, API bodies and connector payloads."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema
from marshmallow import ValidationError as MarshmallowError

from koudai_flask.errors import ValidationError


def load(schema: Schema, data: Any, what: str) -> Any:
    """Validate ``data`` with ``schema``; raise our ValidationError carrying its messages."""
    try:
        return schema.load(data)
    except MarshmallowError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise ValidationError(f"invalid {what}: {_first_message(messages)}", messages) from None


def _first_message(messages: Any, path: str = "") -> str:
    if isinstance(messages, dict):
        for key, value in messages.items():
            return _first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        first = messages[0]
        if isinstance(first, str):
            return f"{path}: {first}" if path else first
        return _first_message(first, path)
    return str(messages)
