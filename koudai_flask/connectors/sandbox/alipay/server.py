"""The sandbox gateway over HTTP: ``/gateway.do``, the cashier pages, a loopback runner."""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

from flask import Flask, Response, abort, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import escape

from koudai_flask.connectors.sandbox.alipay.gateway import (
    API_METHODS,
    PAY_METHODS,
    AlipayGateway,
    GatewayError,
    Trade,
    biz_content,
)
from koudai_flask.connectors.sandbox.alipay.keys import SandboxKeys
from koudai_flask.connectors.sandbox.loopback import LoopbackServer


class AlipaySandbox(AlipayGateway):
    """The gateway served on 127.0.0.1 in a background thread: ``start()``, ``url``, ``stop()``."""

    def __init__(self, keys: SandboxKeys) -> None:
        super().__init__(keys)
        self._loopback: LoopbackServer | None = None

    def create_app(self) -> Flask:
        """The gateway as a Flask app (``/gateway.do``, also ``/``) plus the cashier pages."""
        app = Flask(__name__)

        @app.route("/", methods=["GET", "POST"])
        @app.route("/gateway.do", methods=["GET", "POST"])
        def gateway() -> ResponseReturnValue:
            params = {**request.args.to_dict(), **request.form.to_dict()}
            method = params.get("method", "")
            if method not in PAY_METHODS and method not in API_METHODS:
                body = {**GatewayError("40002", "isv.invalid-method", "不存在的方法名").payload}
                return Response(json.dumps({"error_response": body}, ensure_ascii=False))
            try:
                self.check_request(params)
                biz = biz_content(params)
                if method in PAY_METHODS:
                    trade = self.open_trade(method, biz, params)
                    # The real gateway hands the browser on to the cashier host.
                    return redirect(f"/cashier?token={trade.token}")
                if self._faults:
                    raise self._faults.pop(0)
                handler = {"query": self.query, "close": self.close, "refund": self.refund}
                reply = handler[method.rsplit(".", 1)[1]](biz)
                return self.api_response(method, {"code": "10000", "msg": "Success", **reply})
            except GatewayError as exc:
                if method in PAY_METHODS:
                    return _page("支付宝 - 错误", f"<p>{exc.payload['sub_code']}</p>", 200)
                return self.api_response(method, exc.payload)

        @app.get("/cashier")
        def cashier() -> ResponseReturnValue:
            trade = self._by_token(request.args.get("token", ""))
            price = f"确认付款 Pay ¥{trade.total_amount}"
            body = (
                f"<h1>{escape(price)}</h1><p>{escape(trade.subject)}</p>"
                f"<p>{escape(trade.out_trade_no)}</p>"
                '<form method="post" action="/cashier/pay">'
                f'<input type="hidden" name="token" value="{escape(trade.token)}">'
                f'<button type="submit">{escape(price)}</button></form>'
            )
            return _page("支付宝 收银台 (sandbox)", body, 200)

        @app.post("/cashier/pay")
        def cashier_pay() -> ResponseReturnValue:
            trade = self._by_token(request.form.get("token", ""))
            try:
                self.pay(trade.out_trade_no)
            except GatewayError as exc:
                return _page("支付宝 - 错误", f"<p>{exc.payload['sub_code']}</p>", 409)
            if not trade.return_url:
                return _page("支付宝", "<p>支付成功 Paid</p>", 200)
            separator = "&" if "?" in trade.return_url else "?"
            query = urlencode(self.return_params(trade))
            return redirect(trade.return_url + separator + query)

        return app

    def _by_token(self, token: str) -> Trade:
        with self._lock:
            for trade in self.trades.values():
                if token and secrets.compare_digest(trade.token, token):
                    return trade
        abort(404)

    # -- serving -----------------------------------------------------------------------------

    def start(self, port: int = 0, *, quiet: bool = True) -> AlipaySandbox:
        """Serve on 127.0.0.1:``port`` (0: a free port) in a background thread."""
        self._loopback = LoopbackServer(self.create_app(), port=port, quiet=quiet)
        return self

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, where the cashier pages live."""
        if self._loopback is None:
            raise RuntimeError("the sandbox is not serving; call start() first")
        return self._loopback.url

    @property
    def url(self) -> str:
        """The gateway URL, ``http://127.0.0.1:<port>/gateway.do``: the client's gateway_url."""
        return self.base_url + "/gateway.do"

    def stop(self) -> None:
        if self._loopback is not None:
            self._loopback.stop()
            self._loopback = None

    def __enter__(self) -> AlipaySandbox:
        return self if self._loopback is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _page(title: str, body: str, status: int) -> Response:
    html = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body>{body}</body></html>"
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")
