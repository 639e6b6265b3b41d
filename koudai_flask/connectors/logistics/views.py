"""``POST <hooks prefix>/kuaidi100/callback``: Kuaidi100's signed tracking push.

Thin on purpose: verify the sign, decode ``param``, hand the trace to
:func:`services.logistics.record_tracking`. Kuaidi100 posts a form with ``param`` (JSON) and
``sign = UPPER(MD5(param + salt))`` and retries a push whose reply is not
``{"result":true,"returnCode":"200"}`` (about every 30 minutes, 3 times; PROTOCOLS §5), so
we answer "failed" only when a retry can help. No CSRF token applies: the sign
authenticates the body.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from koudai_flask.connectors.logistics.kuaidi100 import callback_sign, parse_callback
from koudai_flask.errors import NotFound

log = logging.getLogger("koudai_flask.logistics")

# A push holds one waybill's trace: a few kilobytes, far less than this.
MAX_BODY = 512 * 1024


def register_routes(bp: Blueprint) -> None:
    bp.add_url_rule(
        "/kuaidi100/callback", "kuaidi100_callback", kuaidi100_callback, methods=["POST"]
    )


def kuaidi100_callback() -> Response:
    from koudai_flask.services.logistics import record_tracking

    settings: dict[str, Any] | None = current_app.config["KOUDAI_KUAIDI100"]
    if settings is None or not settings.get("salt"):
        return _reply(False, "500", "kuaidi100 pushes are not configured here", 404)
    if (request.content_length or 0) > MAX_BODY:
        return _refuse(413, f"body of {request.content_length} bytes is too large")
    param = request.form.get("param", "")
    sign = request.form.get("sign", "")
    if not param:
        return _refuse(400, "missing param")
    if not sign:
        return _refuse(400, "missing sign")
    expected = callback_sign(param, settings["salt"])
    if not hmac.compare_digest(sign.strip().upper().encode(), expected.encode()):
        return _refuse(400, "sign does not match param")
    try:
        notice = parse_callback(param)
    except (ValueError, TypeError) as exc:
        return _refuse(400, f"param is not a push: {type(exc).__name__}")
    result = notice.result
    try:
        record_tracking(
            notice.carrier,
            result.tracking_number,
            events=result.checkpoints,
            state=result.state,
            source=f"kuaidi100-push:{notice.status or '-'}",
        )
    except NotFound:
        # Shipments exist before we subscribe them, so a retry cannot make this waybill
        # known: answering "failed" would only buy three useless retries. Accept and log.
        log.warning(
            "kuaidi100 push for unknown waybill %s %s ignored",
            notice.carrier,
            result.tracking_number,
        )
        return _reply(True, "200", "成功", 200)
    except SQLAlchemyError:
        # Our database failed: this is what Kuaidi100's retries are for.
        log.exception("kuaidi100 push for %s could not be stored", result.tracking_number)
        return _reply(False, "500", "temporarily unable to store the push", 500)
    return _reply(True, "200", "成功", 200)


def _refuse(status: int, reason: str) -> Response:
    # One line per refusal; it names the reason, never the salt, the sign or the body.
    log.warning("kuaidi100 push refused with %s from %s: %s", status, request.remote_addr, reason)
    return _reply(False, "500", reason, status)


def _reply(result: bool, code: str, message: str, status: int) -> Response:
    response = jsonify({"result": result, "returnCode": code, "message": message})
    response.status_code = status
    return response
