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
        raise ValidationError(f"invalid {what}: {first_message_text(messages)}", messages) from None


def first_message(messages: Any, path: str = "") -> tuple[str, str]:
    """The dotted path ("skus.2.price", "" for the whole input) and the text of the first
    message in marshmallow's nested ``messages``."""
    if isinstance(messages, dict) and messages:
        key, value = next(iter(messages.items()))
        return first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return first_message(messages[0], path)
    return path, str(messages)


def first_message_text(messages: Any) -> str:
    """ "path: text" of the first message, for a one-line error."""
    path, text = first_message(messages)
    return f"{path}: {text}" if path else text
