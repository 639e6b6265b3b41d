"""``POST <hooks prefix>/alipay/notify``: Alipay's signed server-to-server notify.

Thin on purpose: the provider verifies and decodes, :func:`services.payments.apply_notice`
applies. §4 step 4: the reply is the plain text ``success`` when done (a replay included);
anything else makes Alipay deliver it again (8 times over 25 h), so a refusal is ``fail``
with a 4xx status. No CSRF token applies: the body is authenticated by its RSA2 signature.
"""

from __future__ import annotations

import logging

from flask import Response, current_app, request

from koudai_flask.errors import InvalidTransition, KoudaiError, SignatureError, ValidationError

log = logging.getLogger("koudai_flask.payments")

# A real notify is a few kilobytes; anything far larger is not one.
MAX_BODY = 64 * 1024

REFUSALS: tuple[tuple[type[KoudaiError], int], ...] = (
    (SignatureError, 401),
    (ValidationError, 400),
    (InvalidTransition, 400),
)


def alipay_notify() -> Response:
    from koudai_flask.payments.alipay import build_provider
    from koudai_flask.services.payments import apply_notice

    provider = build_provider(current_app)
    if provider is None:
        return _refuse(404, "Alipay is not configured")
    if (request.content_length or 0) > MAX_BODY:
        return _refuse(413, f"body of {request.content_length} bytes is too large")
    # The raw bytes, before Flask parses the form: the charset is named inside the body.
    body = request.get_data(cache=False)
    try:
        notice = provider.parse_notify(dict(request.headers), body)
        apply_notice(notice)
    except (SignatureError, ValidationError, InvalidTransition) as exc:
        status = next(code for kind, code in REFUSALS if isinstance(exc, kind))
        return _refuse(status, exc.message)
    return _reply("success", 200)


def _refuse(status: int, message: str) -> Response:
    # One line per refusal; messages name ids and reasons, never keys, signs or the body.
    log.warning("alipay notify refused with %s from %s: %s", status, request.remote_addr, message)
    return _reply("fail", status)


def _reply(text: str, status: int) -> Response:
    return Response(text, status=status, content_type="text/plain; charset=utf-8")
