"""A Weibo open API on a loopback socket, as far as reputation monitoring reads it (§7, §8).

- ``GET /2/statuses/mentions.json``, ``/2/comments/to_me.json``, ``/2/comments/mentions.json``
  take ``access_token``, ``since_id``, ``max_id``, ``count`` (at most 200) and ``page`` and
  answer newest first: ``{"statuses": [...]}`` or ``{"comments": [...]}`` with
  ``total_number``, items shaped like Weibo's (``id``, ``idstr``, ``created_at`` as
  ``Tue May 31 17:46:55 +0800 2011``, ``text``, ``user``; comments carry their ``status``).
- ``GET /2/search/statuses/limited.json?q=`` is the commercial keyword search; it answers
  only when the sandbox was made with ``search=True`` (else 10014, no permission).
- Errors are ``{"error", "error_code", "request"}`` with HTTP 400/403: 21301 (no token),
  21332 (unknown token), 21327 (``expire_token()``), 10023 (``rate_limit_next(n)``).

Test and demo controls: ``mention(uid, name, text)``, ``comment(uid, name, text,
status_id=None, to_me=True)`` add items and return their ids; ``GET /`` shows a page with
a form that posts a mention (the demo)::

    sandbox = WeiboSandbox(search=True)
    app.config["KOUDAI_WEIBO"] = sandbox.settings_for_client()
    sandbox.api.mention("1900000001", "买家小王", "@品牌 质量太差")
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Flask, Response, json, redirect, render_template_string, request
from flask.typing import ResponseReturnValue

from koudai_flask.connectors.sandbox.loopback import LoopbackServer

EXTENSION = "koudai_weibo_sandbox"
BEIJING = timezone(timedelta(hours=8))
ERRORS = {
    10014: ("Insufficient app permissions", 403),
    10023: ("User requests out of rate limit", 403),
    21301: ("auth faild", 403),
    21327: ("expired_token", 403),
    21332: ("invalid_access_token", 403),
}


class WeiboError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class WeiboApi:
    """The sandbox's state; thread-safe (the server is threaded)."""

    access_token: str
    uid: str = "5000000001"
    screen_name: str = "品牌官方微博"
    search: bool = False
    calls: int = 0
    mentions: list[dict[str, Any]] = field(default_factory=list)
    comments_to_me: list[dict[str, Any]] = field(default_factory=list)
    comment_mentions: list[dict[str, Any]] = field(default_factory=list)
    expired: bool = False
    _failures: deque[int] = field(default_factory=deque)
    _ids: Any = field(default_factory=lambda: itertools.count(4_900_000_000_000_001, 7))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- controls ----------------------------------------------------------------------------

    def expire_token(self) -> None:
        self.expired = True

    def rate_limit_next(self, n: int) -> None:
        with self._lock:
            self._failures.extend([10023] * n)

    def _item(self, uid: str, name: str, text: str) -> dict[str, Any]:
        ident = next(self._ids)
        created = datetime.now(BEIJING).strftime("%a %b %d %H:%M:%S %z %Y")
        return {
            "id": ident,
            "idstr": str(ident),
            "mid": str(ident),
            "created_at": created,
            "text": text,
            "source": '<a href="https://weibo.com/" rel="nofollow">微博 weibo.com</a>',
            "user": {"id": int(uid), "idstr": uid, "screen_name": name},
        }

    def mention(self, uid: str, name: str, text: str) -> str:
        """A status by ``uid`` that mentions the brand; returns its id."""
        with self._lock:
            item = self._item(uid, name, text)
            self.mentions.append(item)
            return str(item["id"])

    def comment(
        self,
        uid: str,
        name: str,
        text: str,
        *,
        status_id: str | None = None,
        to_me: bool = True,
    ) -> str:
        """A comment on a brand post (``to_me``) or one that @-mentions the brand."""
        with self._lock:
            item = self._item(uid, name, text)
            status = self._item(self.uid, self.screen_name, "新品上市")
            if status_id is not None:
                status["id"], status["idstr"] = int(status_id), status_id
            item["status"] = status
            (self.comments_to_me if to_me else self.comment_mentions).append(item)
            return str(item["id"])

    # -- reads -------------------------------------------------------------------------------

    def check(self, token: str | None) -> None:
        with self._lock:
            self.calls += 1
            if not token:
                raise WeiboError(21301)
            if not secrets.compare_digest(token, self.access_token):
                raise WeiboError(21332)
            if self.expired:
                raise WeiboError(21327)
            if self._failures:
                raise WeiboError(self._failures.popleft())

    def page(self, items: list[dict[str, Any]], args: Any) -> tuple[list[dict[str, Any]], int]:
        try:
            since = int(args.get("since_id") or 0)
            max_id = int(args.get("max_id") or 0)
            count = min(200, max(1, int(args.get("count") or 20)))
            page = max(1, int(args.get("page") or 1))
        except ValueError:
            raise WeiboError(10008) from None
        with self._lock:
            chosen = [i for i in items if i["id"] > since and (not max_id or i["id"] <= max_id)]
        chosen.sort(key=lambda i: i["id"], reverse=True)
        return chosen[(page - 1) * count : page * count], len(chosen)

    def searched(self, q: str) -> list[dict[str, Any]]:
        with self._lock:
            pool = self.mentions + self.comments_to_me + self.comment_mentions
            return [dict(i, user=i["user"]) for i in pool if q and q in i["text"]]


DEMO_PAGE = """<!doctype html><meta charset="utf-8"><title>Weibo sandbox</title>
<h1>Weibo sandbox · @{{ api.screen_name }}</h1>
<form method="post" action="/demo/mention">
<input name="uid" value="1900000001"> <input name="name" value="路人甲">
<input name="text" size="60" placeholder="@{{ api.screen_name }} ..."> <button>Post</button></form>
<ul>{% for i in items %}
<li>{{ i.idstr }} · {{ i.user.screen_name }}: {{ i.text }}</li>{% endfor %}</ul>
"""


def create_weibo_sandbox(api: WeiboApi) -> Flask:
    app = Flask(__name__)
    app.extensions[EXTENSION] = api

    @app.errorhandler(WeiboError)
    def refuse(exc: WeiboError) -> ResponseReturnValue:
        message, status = ERRORS.get(exc.code, ("system error", 400))
        body = {"error": message, "error_code": exc.code, "request": request.path}
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def answer(key: str, items: list[dict[str, Any]]) -> Response:
        api.check(request.args.get("access_token"))
        chosen, total = api.page(items, request.args)
        body = {key: chosen, "total_number": total, "previous_cursor": 0, "next_cursor": 0}
        return Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")

    @app.get("/2/statuses/mentions.json")
    def mentions() -> ResponseReturnValue:
        return answer("statuses", api.mentions)

    @app.get("/2/comments/to_me.json")
    def comments_to_me() -> ResponseReturnValue:
        return answer("comments", api.comments_to_me)

    @app.get("/2/comments/mentions.json")
    def comment_mentions() -> ResponseReturnValue:
        return answer("comments", api.comment_mentions)

    @app.get("/2/search/statuses/limited.json")
    def search() -> ResponseReturnValue:
        if not api.search:
            api.check(request.args.get("access_token"))
            raise WeiboError(10014)
        return answer("statuses", api.searched(request.args.get("q", "")))

    @app.get("/")
    def demo() -> ResponseReturnValue:
        items = sorted(api.mentions + api.comments_to_me, key=lambda i: -i["id"])
        return render_template_string(DEMO_PAGE, api=api, items=items)

    @app.post("/demo/mention")
    def demo_mention() -> ResponseReturnValue:
        form = request.form
        uid = form.get("uid", "")
        if uid.isdigit() and form.get("text"):
            api.mention(uid, form.get("name", "")[:30], form["text"][:280])
        return redirect("/", 303)

    return app


class WeiboSandbox(LoopbackServer):
    """The sandbox API on 127.0.0.1: ``.url``, ``.api``, ``.stop()``."""

    def __init__(
        self, *, access_token: str | None = None, port: int = 0, search: bool = False
    ) -> None:
        self.api = WeiboApi(access_token=access_token or secrets.token_hex(16), search=search)
        self.app = create_weibo_sandbox(self.api)
        super().__init__(self.app, port=port)

    def settings_for_client(self, **extra: Any) -> dict[str, Any]:
        """``KOUDAI_WEIBO`` for a shop that monitors this sandbox's brand account."""
        settings: dict[str, Any] = {
            "access_token": self.api.access_token,
            "uid": self.api.uid,
            "api_url": self.url,
        }
        if self.api.search:
            settings["search_url"] = self.url
        return {**settings, **extra}

    def __enter__(self) -> WeiboSandbox:
        return self
