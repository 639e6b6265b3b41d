"""Who may call what: the API key check, scopes, rate limits and idempotent POSTs.

Every endpoint declares its scope with ``requires(codename)`` (``requires(None)``: any
valid key) or is ``public``; ``SCOPES`` records the declarations so that a test can walk
every endpoint. The key comes as ``Authorization: Bearer kd_...``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, g, make_response, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from koudai_flask.blueprints.api import rate_limit
from koudai_flask.blueprints.api.errors import error_response
from koudai_flask.errors import KoudaiError, NotFound, PermissionDenied, ValidationError
from koudai_flask.services import api_keys, idempotency
from koudai_flask.services.api_keys import Principal

View = Callable[..., ResponseReturnValue]

#: view name -> the scope it needs (None: any valid key). Read by the scope-matrix test.
SCOPES: dict[str, str | None] = {}
_PRINCIPAL = "koudai_api_principal"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _add_doc(view: Any, extra: dict[str, Any]) -> None:
    """Add to what flask-smorest documents for ``view`` (its ``manual_doc``)."""
    # A new outer dict and a new manual_doc: ``wraps`` shares the wrapped view's dict, and
    # flask-smorest copies the rest deeply itself when it stores the docs.
    doc = dict(getattr(view, "_apidoc", {}))
    doc["manual_doc"] = {**doc.get("manual_doc", {}), **extra}
    view._apidoc = doc


def requires(scope: str | None) -> Callable[[View], View]:
    """The endpoint needs a key holding ``scope`` (``None``: any valid key); else 403."""

    def decorate(view: View) -> View:
        SCOPES[view.__name__] = scope

        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            if scope is not None and not principal().allows(scope):
                raise PermissionDenied(f"this API key lacks the scope {scope!r}")
            return view(*args, **kwargs)

        _add_doc(wrapped, {"x-koudai-scope": scope or ""})
        return wrapped

    return decorate


def public(view: View) -> View:
    """Open without a key (the API's description)."""
    view._koudai_public = True  # type: ignore[attr-defined]
    _add_doc(view, {"x-koudai-public": True})
    return view


def principal() -> Principal:
    found: Principal = g.get(_PRINCIPAL)
    return found


def authenticate() -> None:
    """``before_request`` of the API: a valid, unrevoked key within its rate limit."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "_koudai_public", False):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    found = api_keys.authenticate(token.strip() if scheme.lower() == "bearer" else None)
    rate_limit.check(found.key_id)
    setattr(g, _PRINCIPAL, found)


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return path or "_schema"
        found = _nul_path(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def refuse_nul_characters() -> None:
    """``before_request``: text with a NUL character is refused (PostgreSQL cannot store it)."""
    found = _nul_path(request.args.to_dict(flat=False), "")
    if found is None and request.is_json:
        found = _nul_path(request.get_json(silent=True), "")
    if found is not None:
        raise ValidationError(
            f"invalid request: {found}: text may not contain NUL characters",
            {found: ["may not contain NUL characters"]},
        )


def check_channel(channel: str) -> None:
    """Out of the key's channel list, an object does not exist (404), as for staff."""
    if not principal().sees_channel(channel):
        raise NotFound("not found within this API key's channels")


def _request_hash() -> str:
    raw = request.get_data(cache=True)
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = raw.decode("latin-1")
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(view: View) -> View:
    """With an ``Idempotency-Key`` header, the POST runs once; repeats get the same reply."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return view(*args, **kwargs)
        claimed = idempotency.claim(
            principal().key_id,
            key,
            method=request.method,
            path=request.path,
            request_hash=_request_hash(),
        )
        if isinstance(claimed, idempotency.StoredReply):
            replay = Response(claimed.body, claimed.status, mimetype="application/json")
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        try:
            response = make_response(view(*args, **kwargs))
        except (KoudaiError, HTTPException) as exc:
            response = error_response(exc)
        except BaseException:
            idempotency.abandon(claimed)
            raise
        if response.status_code >= 500:
            idempotency.abandon(claimed)
        else:
            idempotency.finish(claimed, response.status_code, response.get_data(as_text=True))
        return response

    return wrapped
