"""A WeChat Official Account API on a loopback socket (PROTOCOLS §3.2, §3.3, §8 item 3).

It answers like ``api.weixin.qq.com``: HTTP 200 and a JSON ``errcode`` for every outcome.

- ``GET /cgi-bin/token`` and ``POST /cgi-bin/stable_token`` check the appid and secret
  and issue tokens (``token_requests`` counts the calls, ``token_issues`` the new tokens).
  A classic token replaces the previous one, which stays valid (the real API keeps both for
  5 minutes); a stable token is the same until it expires or ``force_refresh`` replaces it.
- ``POST /cgi-bin/message/template/send`` checks the token (41001 missing, 40001 unknown,
  42001 expired), the openid (40003, when ``known_openids`` is set) and the template id
  (40037, when ``template_ids`` is set), records the message and returns its ``msgid``.
- ``POST /cgi-bin/message/custom/send`` (customer-service text) checks the token and the
  openid, answers 45015 for a follower whose 48-hour window ``close_window(openid)`` closed,
  and records the message in ``custom_messages``.
- ``GET /`` (and ``/messages``) is a page for people: the template messages sent, newest
  first, each with its link, so a demo "follower" can click it.

Test controls: ``expire_all()`` (every issued token answers 42001 next time) and
``fail_next(n, errcode)`` (the next ``n`` calls of a path answer ``errcode``)::

    sandbox = WechatSandbox(appid="wx1234567890abcdef", secret="s3cret")
    app.config["KOUDAI_WECHAT"] = sandbox.settings_for_client()
    ...
    assert sandbox.api.messages[0].touser == "oOpenId"
    sandbox.stop()

To add an endpoint (e.g. ``/sns/oauth2/access_token``), give :class:`WechatApi` its state
and method, and add a route in :func:`create_wechat_sandbox`.
"""

from __future__ import annotations

import itertools
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, json, render_template_string, request
from flask.typing import ResponseReturnValue

from koudai_flask.connectors.sandbox.loopback import LoopbackServer

EXTENSION = "koudai_wechat_sandbox"
TEMPLATE_SEND = "/cgi-bin/message/template/send"
CUSTOM_SEND = "/cgi-bin/message/custom/send"

# The real errmsg texts (a "rid: ..." suffix omitted).
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    47001: "data format error",
}


class ApiError(Exception):
    """An answer with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")


@dataclass
class IssuedToken:
    value: str
    kind: str  # "token" | "stable"
    expires_at: float  # time.monotonic()
    revoked: bool = False

    def remaining(self) -> int:
        """Whole seconds left, rounded up (a fresh token says exactly ``expires_in``)."""
        return max(0, math.ceil(self.expires_at - time.monotonic()))


@dataclass(frozen=True)
class TemplateMessage:
    touser: str
    template_id: str
    data: dict[str, Any]
    url: str | None
    client_msg_id: str | None
    msgid: int


@dataclass(frozen=True)
class CustomMessage:
    touser: str
    content: str


@dataclass
class WechatApi:
    """The sandbox's state and rules; thread-safe (the server is threaded)."""

    appid: str
    secret: str
    expires_in: int = 7200
    known_openids: set[str] | None = None
    template_ids: set[str] | None = None
    # Calls of either token endpoint, and the new tokens they issued.
    token_requests: int = 0
    token_issues: int = 0
    send_calls: int = 0
    messages: list[TemplateMessage] = field(default_factory=list)
    custom_messages: list[CustomMessage] = field(default_factory=list)
    closed_windows: set[str] = field(default_factory=set)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    _failures: dict[str, deque[tuple[int, str | None]]] = field(default_factory=dict)
    _stable: str | None = None
    _classic: list[str] = field(default_factory=list)
    _sent_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    _msgids: Any = field(default_factory=lambda: itertools.count(200228332))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- controls ----------------------------------------------------------------------------

    def expire_all(self) -> None:
        """Every token issued so far answers 42001 from now on."""
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, time.monotonic())

    def fail_next(
        self, n: int, errcode: int, errmsg: str | None = None, *, path: str = TEMPLATE_SEND
    ) -> None:
        """The next ``n`` calls of ``path`` answer ``errcode`` (after the token check)."""
        with self._lock:
            self._failures.setdefault(path, deque()).extend([(errcode, errmsg)] * n)

    def register_openids(self, openids: Iterable[str]) -> None:
        """Only these openids follow the account; any other gets 40003."""
        with self._lock:
            self.known_openids = set(self.known_openids or ()) | set(openids)

    def close_window(self, openid: str) -> None:
        """Customer-service messages to ``openid`` answer 45015 (48 hours have passed)."""
        with self._lock:
            self.closed_windows.add(openid)

    def injected(self, path: str) -> None:
        with self._lock:
            queue = self._failures.get(path)
            if queue:
                raise ApiError(*queue.popleft())

    # -- tokens ------------------------------------------------------------------------------

    def _check_app(self, grant_type: Any, appid: Any, secret: Any) -> None:
        if not appid:
            raise ApiError(41002)
        if not secret:
            raise ApiError(41004)
        if grant_type != "client_credential":
            raise ApiError(40002)
        if appid != self.appid:
            raise ApiError(40013)
        if not secrets.compare_digest(str(secret), self.secret):
            raise ApiError(40125)

    def _issue(self, kind: str) -> IssuedToken:
        token = IssuedToken(
            value=secrets.token_urlsafe(96)[:128],
            kind=kind,
            expires_at=time.monotonic() + self.expires_in,
        )
        self.tokens[token.value] = token
        self.token_issues += 1
        return token

    def classic_token(self, grant_type: Any, appid: Any, secret: Any) -> IssuedToken:
        with self._lock:
            self.token_requests += 1
            self._check_app(grant_type, appid, secret)
            token = self._issue("token")
            self._classic.append(token.value)
            # A new token ends all but the one just before it (the 5-minute overlap).
            for old in self._classic[:-2]:
                self.tokens[old].revoked = True
            return token

    def stable_token(
        self, grant_type: Any, appid: Any, secret: Any, force_refresh: bool
    ) -> IssuedToken:
        with self._lock:
            self.token_requests += 1
            self._check_app(grant_type, appid, secret)
            current = self.tokens.get(self._stable or "")
            if current is not None and not force_refresh and current.remaining() > 0:
                return current
            if current is not None:
                current.revoked = True
            token = self._issue("stable")
            self._stable = token.value
            return token

    def check_token(self, value: str | None) -> None:
        if not value:
            raise ApiError(41001)
        token = self.tokens.get(value)
        if token is None or token.revoked:
            raise ApiError(40001)
        if token.remaining() <= 0:
            raise ApiError(42001)

    # -- messages ----------------------------------------------------------------------------

    def send_template(self, access_token: str | None, body: dict[str, Any]) -> int:
        with self._lock:
            self.send_calls += 1
            self.check_token(access_token)
            self.injected(TEMPLATE_SEND)
            touser, template_id = body.get("touser"), body.get("template_id")
            if not isinstance(touser, str) or not touser:
                raise ApiError(40003)
            if self.known_openids is not None and touser not in self.known_openids:
                raise ApiError(40003)
            if not isinstance(template_id, str) or not template_id:
                raise ApiError(40037)
            if self.template_ids is not None and template_id not in self.template_ids:
                raise ApiError(40037)
            data = body.get("data")
            if not isinstance(data, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()
            ):
                raise ApiError(47001)
            client_msg_id = body.get("client_msg_id")
            # §3.3: one message per openid + client_msg_id (for 10 minutes). The doc does
            # not say what a repeat answers; the sandbox answers the first msgid.
            if client_msg_id and (touser, client_msg_id) in self._sent_ids:
                return self._sent_ids[(touser, client_msg_id)]
            msgid = int(next(self._msgids))
            self.messages.append(
                TemplateMessage(
                    touser=touser,
                    template_id=template_id,
                    data=data,
                    url=body.get("url"),
                    client_msg_id=client_msg_id,
                    msgid=msgid,
                )
            )
            if client_msg_id:
                self._sent_ids[(touser, client_msg_id)] = msgid
            return msgid

    def send_custom(self, access_token: str | None, body: dict[str, Any]) -> None:
        with self._lock:
            self.check_token(access_token)
            self.injected(CUSTOM_SEND)
            touser = body.get("touser")
            if not isinstance(touser, str) or not touser:
                raise ApiError(40003)
            if self.known_openids is not None and touser not in self.known_openids:
                raise ApiError(40003)
            text = body.get("text")
            if body.get("msgtype") != "text" or not isinstance(text, dict):
                raise ApiError(47001)
            content = text.get("content")
            if not isinstance(content, str) or not content:
                raise ApiError(47001)
            if touser in self.closed_windows:
                raise ApiError(45015)
            self.custom_messages.append(CustomMessage(touser=touser, content=content))


MESSAGES_PAGE = """<!doctype html><meta charset="utf-8"><title>WeChat sandbox {{ appid }}</title>
<h1>WeChat Official Account sandbox: sent template messages</h1>
<p>{{ messages|length }} message(s), newest first.</p>
<table border="1" cellpadding="4"><tr><th>msgid</th><th>to (openid)</th><th>template</th>
<th>fields</th><th>link</th></tr>
{% for m in messages %}<tr data-msgid="{{ m.msgid }}"><td>{{ m.msgid }}</td><td>{{ m.touser }}</td>
<td>{{ m.template_id }}</td><td>{% for k, v in m.data.items() %}{{ k }}: {{ v.value if v is mapping
 else v }}<br>{% endfor %}</td><td>{% if m.url %}<a href="{{ m.url }}">{{ m.url }}</a>{% endif %}
</td></tr>{% endfor %}</table>
"""


def create_wechat_sandbox(api: WechatApi) -> Flask:
    """The WSGI app that serves ``api``; its state is ``app.extensions[EXTENSION]``."""
    app = Flask(__name__)
    app.extensions[EXTENSION] = api

    def answer(data: dict[str, Any]) -> Response:
        # WeChat answers JSON with raw UTF-8, HTTP 200 even for errors.
        return Response(json.dumps(data, ensure_ascii=False), mimetype="application/json")

    def body() -> dict[str, Any]:
        if not request.get_data():
            raise ApiError(44002)
        data = request.get_json(force=True, silent=True)
        if not isinstance(data, dict):
            raise ApiError(47001)
        return data

    @app.errorhandler(ApiError)
    def refuse(exc: ApiError) -> ResponseReturnValue:
        return answer({"errcode": exc.errcode, "errmsg": exc.errmsg})

    @app.get("/cgi-bin/token")
    def token() -> ResponseReturnValue:
        api.injected("/cgi-bin/token")
        args = request.args
        issued = api.classic_token(args.get("grant_type"), args.get("appid"), args.get("secret"))
        return answer({"access_token": issued.value, "expires_in": issued.remaining()})

    @app.post("/cgi-bin/stable_token")
    def stable_token() -> ResponseReturnValue:
        api.injected("/cgi-bin/stable_token")
        data = body()
        issued = api.stable_token(
            data.get("grant_type"),
            data.get("appid"),
            data.get("secret"),
            data.get("force_refresh") is True,
        )
        return answer({"access_token": issued.value, "expires_in": issued.remaining()})

    @app.post(TEMPLATE_SEND)
    def template_send() -> ResponseReturnValue:
        msgid = api.send_template(request.args.get("access_token"), body())
        return answer({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    @app.post(CUSTOM_SEND)
    def custom_send() -> ResponseReturnValue:
        api.send_custom(request.args.get("access_token"), body())
        return answer({"errcode": 0, "errmsg": "ok"})

    @app.get("/")
    @app.get("/messages")
    def sent_messages() -> ResponseReturnValue:
        # What followers "received", newest first, each with its link (a person clicks it).
        sent = list(reversed(api.messages))
        return render_template_string(MESSAGES_PAGE, messages=sent, appid=api.appid)

    return app


class WechatSandbox(LoopbackServer):
    """The sandbox API, running on 127.0.0.1: ``.url``, ``.api``, ``.stop()``."""

    def __init__(
        self,
        *,
        appid: str = "wx5andb0x0000000a",
        secret: str | None = None,
        port: int = 0,
        **options: Any,
    ) -> None:
        self.api = WechatApi(appid=appid, secret=secret or secrets.token_hex(16), **options)
        self.app = create_wechat_sandbox(self.api)
        super().__init__(self.app, port=port)

    def settings_for_client(self, **extra: Any) -> dict[str, Any]:
        """``KOUDAI_WECHAT`` for a shop that talks to this sandbox."""
        return {"appid": self.api.appid, "secret": self.api.secret, "api_url": self.url, **extra}

    def expire_all(self) -> None:
        self.api.expire_all()

    def fail_next(
        self, n: int, errcode: int, errmsg: str | None = None, *, path: str = TEMPLATE_SEND
    ) -> None:
        self.api.fail_next(n, errcode, errmsg, path=path)

    def __enter__(self) -> WechatSandbox:
        return self
