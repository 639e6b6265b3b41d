"""Marshmallow schemas for service inputs, API bodies and connector payloads."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, validate
from marshmallow import ValidationError as MarshmallowError

from koudai_flask.errors import ValidationError


class Length(validate.Length):
    """marshmallow's ``Length`` naming the bound a value crossed.

    marshmallow says "Length must be between 1 and 60." both for an empty field and for a
    61-character one; a page then cannot tell the buyer which. This one says "Shorter than
    minimum length 1." (shown as "is required") or "Longer than maximum length 60.".
    """

    def __call__(self, value: Any) -> Any:
        if self.equal is None and self.min is not None and len(value) < self.min:
            raise MarshmallowError(self._format_error(value, self.message_min))
        if self.equal is None and self.max is not None and len(value) > self.max:
            raise MarshmallowError(self._format_error(value, self.message_max))
        return super().__call__(value)


def length_messages(value: str, *, least: int, most: int) -> list[str]:
    """What ``Length`` says of ``value`` ([] when it fits), for a service checking by hand."""
    try:
        Length(min=least, max=most)(value)
    except MarshmallowError as exc:
        return [str(message) for message in exc.messages]
    return []


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
