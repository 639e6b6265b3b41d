"""``POST <hooks prefix>/wechatpay/notify``: WeChat Pay's signed server-to-server callback.

Thin on purpose: the provider verifies and decodes, :func:`services.payments.apply_notice`
applies. The reply follows §2.3: 204 without a body when done (a replay included), or a
4xx with ``{"code": "FAIL", "message": ...}`` so that WeChat Pay delivers it again later.
No CSRF token applies: the request is authenticated by its RSA signature.
"""

from __future__ import annotations

import logging

from flask import Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from koudai_flask.errors import InvalidTransition, KoudaiError, SignatureError, ValidationError

log = logging.getLogger("koudai_flask.payments")

REFUSALS: tuple[tuple[type[KoudaiError], int], ...] = (
    (SignatureError, 401),
    (ValidationError, 400),
    (InvalidTransition, 409),
)


def wechatpay_notify() -> ResponseReturnValue:
    from koudai_flask.payments.wechatpay import build_provider
    from koudai_flask.services.payments import apply_notice

    provider = build_provider(current_app)
    if provider is None:
        return _refuse(404, "WeChat Pay is not configured")
    try:
        notice = provider.parse_notify(dict(request.headers), request.get_data())
        apply_notice(notice)
    except (SignatureError, ValidationError, InvalidTransition) as exc:
        status = next(code for kind, code in REFUSALS if isinstance(exc, kind))
        return _refuse(status, exc.message)
    return Response(status=204)


def _refuse(status: int, message: str) -> ResponseReturnValue:
    # One line per refusal; messages name ids and reasons, never keys or the body.
    log.warning(
        "wechatpay notify refused with %s (Request-ID %s): %s",
        status,
        request.headers.get("Request-ID", "-")[:64],
        message,
    )
    return jsonify({"code": "FAIL", "message": message}), status
