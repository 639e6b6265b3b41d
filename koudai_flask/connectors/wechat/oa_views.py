"""``<hooks prefix>/wechat/oa``: the Official Account's server URL (PROTOCOLS §3.1).

``GET`` is WeChat's URL check: the signature of ``timestamp`` and ``nonce`` with our token,
answered with ``echostr``. ``POST`` is a push: the same signature first (a wrong one is 403
and nothing is read or stored), then, in safe mode (``encrypt_type=aes``), ``msg_signature``
over ``Encrypt`` and its decryption. The answer is the passive reply (encrypted again in
safe mode) or ``success``. Only a failure of our database answers 500, so that WeChat's
retries can help; every retry is deduplicated by :func:`services.wechat_oa.receive`.
No CSRF token applies: the signature authenticates the caller.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from koudai_flask.connectors.wechat.oa_crypto import check_signature
from koudai_flask.connectors.wechat.oa_messages import (
    MAX_PUSH_BYTES,
    MalformedPush,
    encrypted_part,
    encrypted_reply,
    parse_message,
)
from koudai_flask.connectors.wechat.settings import ServerSettings
from koudai_flask.errors import KoudaiError, SignatureError

log = logging.getLogger("koudai_flask.wechat")


def register_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/wechat/oa", "wechat_oa", wechat_oa, methods=["GET", "POST"])


def _plain(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype="text/plain")


def _refuse(status: int, reason: str) -> Response:
    # The reason only: never the body, the token or the signatures.
    log.warning("wechat push refused with %s from %s: %s", status, request.remote_addr, reason)
    return _plain(reason, status)


def wechat_oa() -> Response:
    settings = ServerSettings.from_config(current_app.config["KOUDAI_WECHAT"])
    if settings is None:
        return _plain("the Official Account server is not configured here", 404)
    args = request.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    try:
        check_signature(settings.token, args.get("signature", ""), timestamp, nonce)
    except SignatureError as exc:
        return _refuse(403, exc.message)
    if request.method == "GET":
        return _plain(args.get("echostr", ""))
    if (request.content_length or 0) > MAX_PUSH_BYTES:
        return _refuse(413, "push too large")
    body = request.get_data(cache=False)[: MAX_PUSH_BYTES + 1]
    if len(body) > MAX_PUSH_BYTES:
        return _refuse(413, "push too large")
    safe_mode = args.get("encrypt_type") == "aes"
    try:
        if safe_mode:
            if settings.crypto is None:
                return _refuse(403, "safe-mode push but no encoding_aes_key is configured")
            encrypted = encrypted_part(body)
            settings.crypto.check_msg_signature(
                args.get("msg_signature", ""), timestamp, nonce, encrypted
            )
            message = parse_message(settings.crypto.decrypt(encrypted))
        else:
            message = parse_message(body)
    except SignatureError as exc:
        return _refuse(403, exc.message)
    except MalformedPush as exc:
        return _refuse(400, str(exc))
    from koudai_flask.services import wechat_oa

    try:
        reply = wechat_oa.receive(
            message, subscribe_tag=settings.subscribe_tag, scene_tags=settings.scene_tags
        )
    except KoudaiError as exc:
        return _refuse(400, exc.message)
    except SQLAlchemyError:
        log.exception("wechat push %s could not be stored", message.dedupe_key)
        return _plain("temporarily unable to store the push", 500)
    if reply is None:
        return _plain("success")
    if safe_mode and settings.crypto is not None:
        reply = encrypted_reply(settings.crypto, reply, timestamp=timestamp, nonce=nonce)
    return Response(reply, mimetype="application/xml")
