"""A protocol-faithful Kuaidi100 on a loopback socket: query, subscribe and the push.

PROTOCOLS §5 and §8.5: ``POST /poll/query.do`` checks ``sign = UPPER(MD5(param + key +
customer))`` and answers with the waybills registered here; ``POST /poll`` records a
subscription (``returnCode`` 501 for a duplicate); :meth:`Kuaidi100Sandbox.push` posts a
signed push to the subscriber's ``callbackurl`` as Kuaidi100 does, form ``param`` + ``sign``.
Every request is counted, so tests can prove that a poll made no request.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask, Response, request

from koudai_flask.connectors.logistics.kuaidi100 import callback_sign, dumps, query_sign
from koudai_flask.connectors.sandbox.loopback import LoopbackServer

# Kuaidi100 answers 顺丰 and 中通 only when the receiver's phone matches (§5).
PHONE_CARRIERS = frozenset({"shunfeng", "zhongtong"})


@dataclass
class Waybill:
    """A parcel the sandbox knows: its checkpoints (local time strings) newest first."""

    com: str
    number: str
    state: str = "0"
    phone: str | None = None
    events: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Subscription:
    company: str
    number: str
    callback_url: str
    salt: str | None
    phone: str | None


class Kuaidi100Sandbox:
    """Fake Kuaidi100 for one account: ``start()``, ``url``, ``push(...)``, ``stop()``."""

    def __init__(
        self,
        customer: str = "SANDBOXCUSTOMER",
        key: str = "sandbox-key",
        *,
        journey_interval: float | None = None,
    ) -> None:
        self.customer = customer
        self.key = key
        # For the demo: every subscribed parcel travels on its own, one pushed step per
        # ``journey_interval`` seconds, ending signed for. None: the tests drive pushes.
        self.journey_interval = journey_interval
        self.waybills: dict[str, Waybill] = {}
        self.subscriptions: dict[str, Subscription] = {}
        # Requests served, by path ("/poll/query.do", "/poll"), and queries per waybill.
        self.requests: Counter[str] = Counter()
        self.queries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loopback: LoopbackServer | None = None

    # -- the parcels -------------------------------------------------------------------------

    def register(
        self,
        com: str,
        number: str,
        events: list[dict[str, str]],
        *,
        state: str = "0",
        phone: str | None = None,
    ) -> Waybill:
        """Make a waybill known; ``events`` are ``{"time", "context", "location"}``, any order.

        Times are Kuaidi100's: China local time written ``YYYY-MM-DD HH:MM:SS``.
        """
        waybill = Waybill(com, number, state, phone, _newest_first(events))
        with self._lock:
            self.waybills[number] = waybill
        return waybill

    def last_result(self, number: str) -> dict[str, Any]:
        """The ``lastResult`` / query answer for a waybill, shaped as Kuaidi100's (§5)."""
        waybill = self.waybills[number]
        data = [
            {
                "time": event["time"],
                "ftime": event["time"],
                "context": event["context"],
                "location": event.get("location", ""),
                "areaName": event.get("location", ""),
                "status": event.get("status", "在途"),
                "statusCode": event.get("statusCode", waybill.state),
            }
            for event in waybill.events
        ]
        return {
            "message": "ok",
            "nu": waybill.number,
            "ischeck": "1" if waybill.state.startswith("3") else "0",
            "condition": "F00",
            "com": waybill.com,
            "status": "200",
            "state": waybill.state,
            "data": data,
        }

    # -- HTTP --------------------------------------------------------------------------------

    def create_app(self) -> Flask:
        app = Flask(__name__)

        @app.post("/poll/query.do")
        def query() -> Response:
            self._count("/poll/query.do")
            customer = request.form.get("customer", "")
            param = request.form.get("param", "")
            sign = request.form.get("sign", "")
            if customer != self.customer or sign != query_sign(param, self.key, self.customer):
                return _answer({"result": False, "returnCode": "503", "message": "验证签名失败"})
            try:
                asked = json.loads(param)
            except ValueError:
                return _answer({"result": False, "returnCode": "400", "message": "参数错误"})
            with self._lock:
                self.queries[str(asked.get("num", ""))] += 1
                waybill = self.waybills.get(str(asked.get("num", "")))
            if waybill is None or waybill.com != asked.get("com"):
                return _answer(
                    {"result": False, "returnCode": "500", "message": "查询无结果，请隔段时间再查"}
                )
            phone = str(asked.get("phone") or "")
            if waybill.com in PHONE_CARRIERS and waybill.phone and phone[-4:] != waybill.phone[-4:]:
                return _answer({"result": False, "returnCode": "408", "message": "验证码错误"})
            return _answer(self.last_result(waybill.number))

        @app.post("/poll")
        def subscribe() -> Response:
            self._count("/poll")
            try:
                param = json.loads(request.form.get("param", ""))
                parameters = param.get("parameters") or {}
                company, number = str(param["company"]), str(param["number"])
                callback_url = str(parameters["callbackurl"])
            except (ValueError, KeyError, AttributeError, TypeError):
                return _answer({"result": False, "returnCode": "700", "message": "订阅数据错误"})
            if request.form.get("schema") != "json" or param.get("key") != self.key:
                return _answer(
                    {"result": False, "returnCode": "600", "message": "您不是合法的订阅者"}
                )
            with self._lock:
                if number in self.subscriptions:
                    return _answer({"result": False, "returnCode": "501", "message": "重复订阅"})
                self.subscriptions[number] = Subscription(
                    company, number, callback_url, parameters.get("salt"), parameters.get("phone")
                )
            if self.journey_interval is not None:
                threading.Thread(
                    target=self._travel,
                    args=(company, number),
                    name="kuaidi100-journey",
                    daemon=True,
                ).start()
            return _answer({"result": True, "returnCode": "200", "message": "提交成功"})

        return app

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    # -- the push ----------------------------------------------------------------------------

    def callback_form(
        self,
        number: str,
        events: list[dict[str, str]] | None = None,
        *,
        state: str | None = None,
        status: str = "polling",
    ) -> dict[str, str]:
        """The form Kuaidi100 would post for a subscribed waybill (updating it first)."""
        subscription = self.subscriptions[number]
        with self._lock:
            waybill = self.waybills.setdefault(number, Waybill(subscription.company, number))
            if events is not None:
                waybill.events = _newest_first(events)
            if state is not None:
                waybill.state = state
        body = {
            "status": status,
            "billstatus": "check" if status == "shutdown" else "got",
            "message": "",
            "autoCheck": "0",
            "comOld": "",
            "comNew": "",
            "lastResult": self.last_result(number),
        }
        param = dumps(body)
        form = {"param": param}
        if subscription.salt:
            form["sign"] = callback_sign(param, subscription.salt)
        return form

    def push(
        self,
        number: str,
        events: list[dict[str, str]] | None = None,
        *,
        state: str | None = None,
        status: str = "polling",
        attempts: int = 3,
    ) -> requests.Response:
        """POST a signed push to the subscriber, retrying quickly as Kuaidi100 does (slowly).

        A push counts as delivered only on ``{"result": true, "returnCode": "200"}``.
        Returns the last response; a connection failure on the last attempt raises.
        """
        subscription = self.subscriptions[number]
        form = self.callback_form(number, events, state=state, status=status)
        for attempt in range(1, attempts + 1):
            try:
                response = requests.post(subscription.callback_url, data=form, timeout=10)
            except requests.RequestException:
                if attempt == attempts:
                    raise
            else:
                if _accepted(response) or attempt == attempts:
                    return response
            time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    JOURNEY = (
        ("1", "【杭州市】快件已由快递员揽收", "杭州市"),
        ("0", "【杭州市】快件已发往 上海转运中心", "杭州市"),
        ("0", "【上海市】快件已到达 上海转运中心", "上海市"),
        ("5", "【上海市】快递员正在派件，请保持电话畅通", "上海市"),
        ("3", "【上海市】快件已签收，签收人：本人", "上海市"),
    )

    def _travel(self, com: str, number: str) -> None:
        """A parcel's whole journey, pushed one step at a time (the demo's courier)."""
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo

        assert self.journey_interval is not None
        start = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
        events: list[dict[str, str]] = []
        for step, (state, context, location) in enumerate(self.JOURNEY):
            time.sleep(self.journey_interval)
            stamp = (start + timedelta(minutes=step)).strftime("%Y-%m-%d %H:%M:%S")
            events.append({"time": stamp, "context": context, "location": location})
            self.register(com, number, list(events), state=state)
            status = "shutdown" if state == "3" else "polling"
            try:
                self.push(number, state=state, status=status)
            except requests.RequestException:
                return  # the shop is gone: the journey ends with it

    # -- serving -----------------------------------------------------------------------------

    def start(self, port: int = 0) -> Kuaidi100Sandbox:
        """Serve on 127.0.0.1:``port`` (0: a free port) in a background thread."""
        self._loopback = LoopbackServer(self.create_app(), port=port)
        return self

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._loopback is None:
            raise RuntimeError("the sandbox is not serving; call start() first")
        return self._loopback.url

    @property
    def query_url(self) -> str:
        return self.url + "/poll/query.do"

    @property
    def subscribe_url(self) -> str:
        return self.url + "/poll"

    def settings(self, **extra: Any) -> dict[str, Any]:
        """A ``KOUDAI_KUAIDI100`` value pointing at this sandbox."""
        return {
            "customer": self.customer,
            "key": self.key,
            "query_url": self.query_url,
            "subscribe_url": self.subscribe_url,
            **extra,
        }

    def stop(self) -> None:
        if self._loopback is not None:
            self._loopback.stop()
            self._loopback = None

    def __enter__(self) -> Kuaidi100Sandbox:
        return self if self._loopback is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _newest_first(events: list[dict[str, str]]) -> list[dict[str, str]]:
    # The fixed-width local time string sorts as the time does.
    return sorted((dict(event) for event in events), key=lambda e: e["time"], reverse=True)


def _accepted(response: requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        response.status_code == 200
        and isinstance(body, dict)
        and body.get("result") is True
        and str(body.get("returnCode")) == "200"
    )


def _answer(body: dict[str, Any]) -> Response:
    return Response(dumps(body), content_type="application/json;charset=UTF-8")
