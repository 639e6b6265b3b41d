"""The OpenAPI document of one registration of the API blueprint, built from the blueprint.

flask-smorest's ``Api`` wants one object per app and installs app-wide error handlers and
commands, which an embedded library must not do to its host; and a host may mount our API
twice under two names. So the views use flask-smorest's ``Blueprint`` (its ``arguments``
and ``response`` decorators keep the documentation of each view), and the document is
built here per registration: a fresh ``APISpec`` with the same plugins, filled by the
blueprint's ``register_views_in_doc`` for the name it was mounted under, then completed with
what every endpoint shares (the key, its scope, rate limits, ETags, Idempotency-Key).
"""

from __future__ import annotations

import http
import threading
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from flask_smorest import Blueprint
from flask_smorest.spec.plugins import FlaskPlugin
from flask_smorest.utils import prepare_response

from koudai_flask.schemas.api_common import ApiError

OPENAPI_VERSION = "3.0.3"
JSON = "application/json"
SECURITY_SCHEME = "apiKey"
DESCRIPTION = (
    "The koudai_flask open platform. Send an API key as `Authorization: Bearer kd_...`; "
    "each endpoint names the scope (a staff permission codename) its key needs. Money is "
    "integer fen. Every error is `{code, message, errors}`. GET answers carry an `ETag` "
    "(send it back as `If-None-Match` for a 304); a POST with an `Idempotency-Key` runs "
    "once, and repeating it returns the first answer."
)


class _DocDefaults:
    """What flask-smorest's documentation callbacks read from an ``Api`` object."""

    DEFAULT_ERROR_RESPONSE_NAME = "DEFAULT_ERROR"
    DEFAULT_REQUEST_BODY_CONTENT_TYPE = JSON
    DEFAULT_RESPONSE_CONTENT_TYPE = JSON
    config: dict[str, Any] = {}


_lock = threading.Lock()


def document(app: Flask, blueprint: Blueprint, name: str) -> dict[str, Any]:
    """The OpenAPI document of ``blueprint`` as registered under ``name`` (cached per app)."""
    cache: dict[str, dict[str, Any]] = app.extensions.setdefault("koudai_api_docs", {})
    found = cache.get(name)
    if found is None:
        with _lock:
            found = cache.get(name) or _build(app, blueprint, name)
            cache[name] = found
    return found


def _build(app: Flask, blueprint: Blueprint, name: str) -> dict[str, Any]:
    from koudai_flask import __version__

    spec = APISpec(
        title="koudai_flask REST API",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[FlaskPlugin(), MarshmallowPlugin()],
        info={"description": DESCRIPTION},
    )
    spec.components.schema("ApiError", schema=ApiError)
    for status in http.HTTPStatus:
        if status >= 400:
            # 401 and 403 are added to every keyed operation below, after the others resolved.
            lazy = status not in (401, 403)
            _error_component(spec, status.name, status.phrase, lazy=lazy)
    _error_component(spec, "DEFAULT_ERROR", "Error", lazy=True)
    spec.components.security_scheme(
        SECURITY_SCHEME,
        {"type": "http", "scheme": "bearer", "bearerFormat": "kd_<prefix>_<secret>"},
    )
    with app.app_context():
        blueprint.register_views_in_doc(_DocDefaults(), app, spec, name=name, parameters=None)
    document = spec.to_dict()
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                _complete(method, operation)
    return document


def _error_component(spec: APISpec, name: str, phrase: str, *, lazy: bool) -> None:
    response: dict[str, Any] = {"description": phrase, "schema": ApiError}
    prepare_response(response, spec, JSON)
    spec.components.response(name, response, lazy=lazy)


def _complete(method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    parameters = operation.setdefault("parameters", [])
    if operation.pop("x-koudai-public", False):
        operation["security"] = []
    else:
        scope = operation.get("x-koudai-scope") or None
        operation["security"] = [{SECURITY_SCHEME: []}]
        needs = f"Scope: `{scope}`." if scope else "Any valid API key."
        operation["description"] = f"{operation.get('description', '')}\n\n{needs}".strip()
        responses.setdefault("401", {"$ref": "#/components/responses/UNAUTHORIZED"})
        responses.setdefault("403", {"$ref": "#/components/responses/FORBIDDEN"})
        responses.setdefault(
            "429",
            {
                "description": "Too many requests for this key",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds until the window resets",
                        "schema": {"type": "integer"},
                    }
                },
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/ApiError"}}},
            },
        )
    if method == "get":
        parameters.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "The ETag of a copy you hold: 304 if it is still current.",
                "schema": {"type": "string"},
            }
        )
        ok = responses.get("200")
        if isinstance(ok, dict):
            ok.setdefault("headers", {})["ETag"] = {
                "description": "Hash of the body",
                "schema": {"type": "string"},
            }
        responses.setdefault("304", {"description": "Not Modified: your copy is current"})
    elif method == "post":
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Makes the POST safe to repeat: the same key gets the same "
                "answer and the effect happens once. Reusing a key for another request "
                "is 422.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 160},
            }
        )
    if not parameters:
        operation.pop("parameters")
