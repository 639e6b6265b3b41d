"""The sandbox gateway as a WSGI app, its H5 cashier page, and a loopback server to run it."""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, redirect, render_template_string, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.connectors.sandbox.wechatpay.gateway import (
    GatewayError,
    Transaction,
    WechatPayGateway,
)
from koudai_flask.connectors.sandbox.wechatpay.keys import SandboxKeys, random_text
from koudai_flask.connectors.sandbox.wechatpay.wire import dumps

EXTENSION = "koudai_wechatpay_sandbox"

CASHIER = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>微信支付 WeChat Pay · 沙箱 Sandbox</title>
<style>
body{margin:0;background:#ededed;color:#111;font-family:-apple-system,"PingFang SC",sans-serif}
main{max-width:420px;margin:0 auto;padding:40px 20px;text-align:center}
h1{font-size:17px;font-weight:400;margin:0 0 8px}
.amount{font-size:44px;font-weight:600;margin:0 0 32px}
button{width:100%;padding:14px;border:0;border-radius:8px;background:#07c160;color:#fff;font-size:17px}
.message{font-size:17px}.note{color:#888;font-size:13px;margin-top:32px}
</style></head><body><main>
{% if tx %}<h1>{{ tx.description }}</h1><p class="amount">¥{{ yuan }}</p>{% endif %}
{% if message %}<p class="message">{{ message }}</p>{% else %}
<form method="post" action="{{ url_for('pay') }}">
<input type="hidden" name="prepay_id" value="{{ tx.prepay_id }}">
<input type="hidden" name="token" value="{{ tx.token }}">
<input type="hidden" name="redirect_url" value="{{ redirect_url }}">
<button type="submit">确认支付 Pay ¥{{ yuan }}</button>
</form>{% endif %}
<p class="note">沙箱环境，不会扣款 · Sandbox: no money moves</p>
</main></body></html>"""


def create_wechatpay_sandbox(
    *,
    mchid: str,
    appid: str,
    apiv3_key: str,
    merchant_public_key_pem: str,
    platform_private_key_pem: str,
    platform_serial: str,
    **options: Any,
) -> Flask:
    """A WSGI app that answers like ``api.mch.weixin.qq.com`` for one merchant.

    ``options``: ``merchant_serial_no`` (then checked too), ``notify_tries`` (3),
    ``notify_interval`` (0.2 s), ``notify_timeout`` (5 s), ``refund_status`` ("SUCCESS").
    The state is ``app.extensions["koudai_wechatpay_sandbox"]``, a WechatPayGateway.
    """
    gateway = WechatPayGateway(
        mchid=mchid,
        appid=appid,
        apiv3_key=apiv3_key,
        merchant_public_key_pem=merchant_public_key_pem,
        platform_private_key_pem=platform_private_key_pem,
        platform_serial=platform_serial,
        **options,
    )
    app = Flask(__name__)
    app.extensions[EXTENSION] = gateway

    def json_answer(data: Any, status: int = 200) -> Response:
        return Response(dumps(data), status=status, mimetype="application/json")

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise GatewayError(400, "PARAM_ERROR", "请求体不是 JSON 对象 (body is not JSON)")
        return data

    @app.before_request
    def authenticate() -> None:
        if not request.path.startswith("/v3/"):
            return
        if not request.headers.get("Accept") or not request.headers.get("User-Agent"):
            raise GatewayError(400, "INVALID_REQUEST", "Http头缺少Accept或User-Agent")
        # The signed URL is the request target exactly as sent, query string included.
        raw_uri = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
        header = request.headers.get("Authorization", "")
        gateway.check_authorization(request.method, raw_uri, header, request.get_data())
        injected = gateway.injected_error()
        if injected is not None:
            raise injected

    @app.errorhandler(GatewayError)
    def refuse(exc: GatewayError) -> ResponseReturnValue:
        return json_answer({"code": exc.code, "message": exc.message}, exc.status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if not request.path.startswith("/v3/"):
            return exc
        return json_answer({"code": "NOT_FOUND", "message": exc.name}, exc.code or 500)

    @app.after_request
    def sign_answer(response: Response) -> Response:
        # Every API answer is signed, errors included (§2.3).
        if request.path.startswith("/v3/"):
            response.headers.update(gateway.signed_headers(response.get_data()))
        return response

    @app.post("/v3/pay/transactions/jsapi")
    def jsapi() -> ResponseReturnValue:
        return json_answer({"prepay_id": gateway.create("JSAPI", body()).prepay_id})

    @app.post("/v3/pay/transactions/h5")
    def h5() -> ResponseReturnValue:
        tx = gateway.create("MWEB", body())
        query = urlencode({"prepay_id": tx.prepay_id, "package": random_text(10, string.digits)})
        return json_answer({"h5_url": f"{request.host_url}pay?{query}"})

    @app.get("/v3/pay/transactions/out-trade-no/<out_trade_no>")
    def query(out_trade_no: str) -> ResponseReturnValue:
        if request.args.get("mchid") != gateway.mchid:
            raise GatewayError(400, "PARAM_ERROR", "mchid 缺失或错误 (query mchid)")
        return json_answer(gateway.query(out_trade_no))

    @app.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
    def close(out_trade_no: str) -> ResponseReturnValue:
        if body().get("mchid") != gateway.mchid:
            raise GatewayError(400, "MCH_NOT_EXISTS", "商户号不存在 (unknown mchid)")
        gateway.close(out_trade_no)
        return Response(status=204)

    @app.post("/v3/refund/domestic/refunds")
    def refund() -> ResponseReturnValue:
        return json_answer(gateway.refund(body()))

    def page(tx: Transaction | None, message: str | None, redirect_url: str = "") -> str:
        yuan = f"{tx.total // 100}.{tx.total % 100:02d}" if tx else ""
        return render_template_string(
            CASHIER, tx=tx, yuan=yuan, message=message, redirect_url=redirect_url
        )

    @app.get("/pay")
    def cashier() -> ResponseReturnValue:
        tx = gateway.by_prepay_id(request.args.get("prepay_id", ""))
        problem = gateway.cashier_problem(tx)
        status = 404 if tx is None else 200
        return page(tx, problem, request.args.get("redirect_url", "")), status

    @app.post("/pay")
    def pay() -> ResponseReturnValue:
        prepay_id, redirect_url = (
            request.form.get("prepay_id", ""),
            request.form.get("redirect_url", ""),
        )
        try:
            tx = gateway.pay(prepay_id, request.form.get("token", ""))
        except GatewayError as exc:
            return page(gateway.by_prepay_id(prepay_id), exc.message), exc.status
        if redirect_url.startswith(("https://", "http://")):
            return redirect(redirect_url, 302)
        return page(tx, "支付成功 Payment complete")

    return app


class WechatPaySandbox(LoopbackServer):
    """The sandbox gateway, running: ``.url``, ``.keys``, ``.gateway``, ``.stop()``."""

    def __init__(self, keys: SandboxKeys | None = None, *, port: int = 0, **options: Any) -> None:
        self.keys = keys or SandboxKeys.generate()
        self.app = create_wechatpay_sandbox(**self.keys.sandbox_options(), **options)
        self.gateway: WechatPayGateway = self.app.extensions[EXTENSION]
        super().__init__(self.app, port=port)

    def settings_for_client(self) -> dict[str, Any]:
        """``KOUDAI_WECHATPAY`` for a shop that pays through this sandbox."""
        return self.keys.settings_for_client(self.url)

    def send_notify(
        self, out_trade_no: str, *, duplicate: int = 1, signtest: bool = False
    ) -> list[int | None]:
        return self.gateway.send_notify(out_trade_no, duplicate=duplicate, signtest=signtest)

    def stop(self) -> None:
        self.gateway.notifier.wait()
        super().stop()

    def __enter__(self) -> WechatPaySandbox:
        return self
