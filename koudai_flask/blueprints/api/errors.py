"""Every API error is one JSON shape: ``{"code", "message", "errors"}``, and sometimes
``reason`` and ``detail``.

``code`` is the error's class name (``NotFound``, ``ValidationError``, ``OutOfStock``, ...),
``message`` says what went wrong in a sentence, ``errors`` maps each bad field to its
messages (empty when no field is to blame). ``reason`` names a refusal in one word when the
service gave one; ``detail`` carries a refusal's figures (the SKU short of stock and how
many are available, the order and the state that refused the action) so that a program
need not parse ``message``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from koudai_flask.errors import KoudaiError
from koudai_flask.schemas import first_message_text


class RateLimited(KoudaiError):
    """The key made more requests than ``KOUDAI_API_RATE_LIMIT`` in the current window."""

    http_status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests for this API key; retry in {retry_after} s")
        self.retry_after = retry_after


def _flatten(messages: Any) -> dict[str, Any]:
    """webargs keys messages by location (``{"json": {...}, "query": {...}}``); we do not."""
    if not isinstance(messages, dict):
        return {"_schema": messages}
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[str(location)] = fields
    return flat


def error_response(exc: KoudaiError | HTTPException) -> Response:
    if isinstance(exc, KoudaiError):
        code, status, message = type(exc).__name__, exc.http_status, exc.message
        errors = dict(getattr(exc, "messages", {}) or {})
    else:
        status = exc.code or 500
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and "messages" in data:
            errors = _flatten(data["messages"])
            code, message = "ValidationError", f"invalid request: {first_message_text(errors)}"
        else:
            code = (exc.name or "Error").replace(" ", "")
            message, errors = str(exc.description or exc.name), {}
    body: dict[str, Any] = {"code": code, "message": message, "errors": errors}
    if isinstance(exc, KoudaiError):
        if exc.reason:
            body["reason"] = exc.reason
        if exc.detail is not None:
            body["detail"] = exc.detail
    response = jsonify(body)
    response.status_code = status
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
