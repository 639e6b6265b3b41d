"""The TOP sandbox as a WSGI app: ``/router/rest``, the OAuth pages, pictures, a stock page.

``/router/rest`` checks a request as TOP does (PROTOCOLS §1.3–1.5, §8.1): query string and
form merged, app key, timestamp (GMT+8 text or epoch ms, ±10 min), version, format and the
signature in any of the three methods, then the seller session; refusals are the exact
``error_response`` wrapper. ``/authorize`` and ``/token`` issue sessions (§1.7);
``/img/<name>.png`` serves item pictures; ``/`` is the seller's stock page (``stock_page``),
``/sandbox/memos`` the seller's memos of the trades (``memo_page``).
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, redirect, render_template_string, request
from flask.typing import ResponseReturnValue

from koudai_flask.connectors.sandbox.taobao.images import png_bytes, valid_name
from koudai_flask.connectors.sandbox.taobao.memo_page import register_memo_page
from koudai_flask.connectors.sandbox.taobao.methods import METHODS
from koudai_flask.connectors.sandbox.taobao.state import (
    ACCESS_TTL,
    REFRESH_TTL,
    Grant,
    TopError,
    TopState,
    ban_error,
)
from koudai_flask.connectors.sandbox.taobao.stock_page import register_stock_page
from koudai_flask.connectors.taobao.client import TIME_FORMAT, TOP_ZONE, response_key
from koudai_flask.connectors.taobao.signing import SIGN_METHODS, verify

EXTENSION = "koudai_taobao_sandbox"
MAX_SKEW = 600  # seconds (§1.3: error 31 beyond 10 minutes)

AUTHORIZE_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>淘宝授权 Taobao authorization · 沙箱 Sandbox</title>
<style>body{font-family:-apple-system,"PingFang SC",sans-serif;max-width:420px;margin:40px auto;
padding:0 20px;text-align:center}button{width:100%;padding:14px;border:0;border-radius:8px;
background:#ff5000;color:#fff;font-size:17px}.note{color:#888;font-size:13px}</style>
</head><body>
{% if problem %}<p>{{ problem }}</p>{% else %}
<p>应用 {{ client_id }} 请求访问店铺 <b>{{ nick }}</b> 的商品、交易与物流。</p>
<p>App {{ client_id }} asks to manage the items, trades and shipping of <b>{{ nick }}</b>.</p>
<form method="post" action="{{ url_for('authorize') }}">
{% for name, value in fields.items() %}
<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
<button type="submit">授权 Authorize</button></form>{% endif %}
<p class="note">沙箱环境 · Sandbox</p></body></html>"""


def json_answer(data: Any, status: int = 200) -> Response:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, content_type="application/json;charset=UTF-8")


def check_timestamp(text: str) -> None:
    if not text:
        raise TopError(30, "Missing timestamp")
    try:
        if text.isdigit():  # the official Python SDK sends epoch milliseconds (§1.3)
            sent = int(text) / 1000
        else:
            sent = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=TOP_ZONE).timestamp()
    except ValueError:
        raise TopError(31, "Invalid timestamp", "isv.invalid-timestamp", text) from None
    if abs(time.time() - sent) > MAX_SKEW:
        raise TopError(31, "Invalid timestamp", "isv.invalid-timestamp", "时间戳误差超过10分钟")


def check_request(state: TopState, params: dict[str, str]) -> str:
    """The §1.3/§1.4 checks in TOP's order; returns the method name."""
    method = params.get("method", "")
    if not method:
        raise TopError(21, "Missing method")
    app_key = params.get("app_key", "")
    if not app_key:
        raise TopError(28, "Missing app key")
    secret = state.apps.get(app_key)
    if secret is None:
        raise TopError(29, "Invalid app Key")
    if not params.get("sign"):
        raise TopError(24, "Missing signature")
    check_timestamp(params.get("timestamp", ""))
    if not params.get("v"):
        raise TopError(32, "Missing version")
    if params["v"] != "2.0":
        raise TopError(34, "Unsupported version")
    if params.get("format", "xml") != "json":
        raise TopError(23, "Invalid format", "isv.invalid-format", "沙箱只支持 format=json")
    if params.get("sign_method", "md5") not in SIGN_METHODS or not verify(params, secret):
        raise TopError(25, "Invalid signature")
    if method not in METHODS:
        raise TopError(22, "Invalid method")
    return method


def injected_fault(state: TopState, method: str) -> Response | None:
    """A running ban, or the next ``fail_next`` fault for ``method``, as TOP (or the network)
    would show it; ``None`` lets the call go on (after a sleep, for "timeout"/"slow")."""
    left = state.ban_left()
    if left:
        raise ban_error(left)
    fault = state.take_fault(method)
    if fault is None:
        return None
    if fault.kind == "5xx":
        return Response("<html><body>502 Bad Gateway</body></html>", 502, mimetype="text/html")
    if fault.kind in ("timeout", "slow"):
        # After a "timeout" the caller has given up, but the call still runs: a timed-out
        # update may well have been applied, as on the real gateway.
        time.sleep(fault.seconds)
        return None
    if fault.kind == "bad_json":
        return Response('{"item_seller_get_response":', 200, mimetype="application/json")
    if fault.kind == "ban":
        state.start_ban(fault.seconds)
    raise {
        "rate_limit": ban_error(fault.seconds),
        "ban": ban_error(fault.seconds),
        "session_expired": TopError(27, "Invalid session", "session-expired", "SessionKey过期"),
        "isp": TopError(15, "Remote service error", "isp.top-remote-connection-timeout", "超时"),
        "isv": TopError(15, "Remote service error", "isv.invalid-parameter", "参数错误"),
    }[fault.kind]


def token_json(grant: Grant) -> dict[str, Any]:
    return {
        "access_token": grant.access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL,
        "refresh_token": grant.refresh_token,
        "re_expires_in": REFRESH_TTL,
        "r1_expires_in": ACCESS_TTL,
        "w1_expires_in": ACCESS_TTL,
        "taobao_user_id": str(grant.user_id),
        "taobao_user_nick": grant.user_nick,
    }


def create_taobao_sandbox(state: TopState) -> Flask:
    """A WSGI app that answers like the TOP gateway and ``oauth.taobao.com`` for ``state``."""
    app = Flask(__name__)
    app.extensions[EXTENSION] = state

    @app.route("/router/rest", methods=["GET", "POST"])
    def router() -> ResponseReturnValue:
        # §1.2: the official SDK puts system params in the query and app params in the form.
        params = {**request.args.to_dict(), **request.form.to_dict()}
        request_id = secrets.token_hex(7)
        if params.get("method"):
            with state.lock:
                state.calls[params["method"]] += 1
        try:
            method = check_request(state, params)
            if state.latency:
                time.sleep(state.latency)
            fault = injected_fault(state, method)
            if fault is not None:
                return fault
            needs_session, handler = METHODS[method]
            if needs_session:
                state.check_session(params["app_key"], params.get("session", ""))
            answer = handler(state, params, params["app_key"])
        except TopError as exc:
            return json_answer(exc.body(request_id))
        answer["request_id"] = request_id
        return json_answer({response_key(method): answer})

    @app.get("/authorize")
    def authorize_page() -> ResponseReturnValue:
        fields = {
            name: request.args.get(name, "")
            for name in ("client_id", "redirect_uri", "state", "view")
        }
        problem = None
        if request.args.get("response_type") != "code":
            problem = "response_type 必须是 code (response_type must be code)"
        elif fields["client_id"] not in state.apps:
            problem = "应用不存在 (unknown client_id)"
        elif not fields["redirect_uri"].startswith(("http://", "https://")):
            problem = "redirect_uri 无效 (invalid redirect_uri)"
        page = render_template_string(
            AUTHORIZE_PAGE,
            problem=problem,
            fields=fields,
            client_id=fields["client_id"],
            nick="sandbox_koudai_shop",
        )
        return page, 400 if problem else 200

    @app.post("/authorize")
    def authorize() -> ResponseReturnValue:
        client_id, redirect_uri = request.form.get("client_id", ""), request.form["redirect_uri"]
        if client_id not in state.apps or not redirect_uri.startswith(("http://", "https://")):
            return "unknown client_id or bad redirect_uri", 400
        code = secrets.token_urlsafe(18)
        with state.lock:
            state.codes[code] = (client_id, redirect_uri)
        query = urlencode({"code": code, "state": request.form.get("state", "")})
        joiner = "&" if "?" in redirect_uri else "?"
        return redirect(f"{redirect_uri}{joiner}{query}", 302)

    @app.post("/token")
    def token() -> ResponseReturnValue:
        form = request.form
        client_id = form.get("client_id", "")
        if state.apps.get(client_id) is None or state.apps[client_id] != form.get("client_secret"):
            return json_answer({"error": "invalid_client", "error_description": "bad client"}, 401)
        grant_type = form.get("grant_type")
        with state.lock:
            if grant_type == "authorization_code":
                issued = state.codes.pop(form.get("code", ""), None)
                if issued is None or issued != (client_id, form.get("redirect_uri", "")):
                    return json_answer(
                        {"error": "invalid_grant", "error_description": "code 无效或已使用"}, 400
                    )
                return json_answer(token_json(state.issue_grant(client_id)))
            if grant_type == "refresh_token":
                old = state.refresh_grants.get(form.get("refresh_token", ""))
                if old is None or old.app_key != client_id or old.refresh_expires_at < time.time():
                    return json_answer(
                        {"error": "invalid_grant", "error_description": "refresh_token 无效"}, 400
                    )
                # The old pair stops working once renewed [U: TOP's exact rule].
                state.grants.pop(old.access_token, None)
                state.refresh_grants.pop(old.refresh_token, None)
                return json_answer(token_json(state.issue_grant(client_id)))
        return json_answer({"error": "unsupported_grant_type"}, 400)

    @app.get("/img/<name>.png")
    def picture(name: str) -> ResponseReturnValue:
        with state.lock:
            known = valid_name(name) and name in state.images
        if not known:
            return Response("no such picture", 404, mimetype="text/plain")
        response = Response(png_bytes(name), mimetype="image/png")
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    register_stock_page(app, state)
    register_memo_page(app, state)
    return app
