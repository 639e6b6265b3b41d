"""A WeChat Pay API v3 gateway on a loopback socket, faithful to the wire (PROTOCOLS §2, §8.2).

It checks every request's ``Authorization`` as the real gateway does (401 SIGN_ERROR),
signs every answer with the platform key and all ``Wechatpay-*`` headers, keeps JSAPI and
H5 transactions in memory, serves the H5 cashier page at ``h5_url`` and, when the buyer
pays there, POSTs an AES-GCM encrypted, signed notify to the order's ``notify_url`` with
retries::

    sandbox = WechatPaySandbox()            # fresh keys (SandboxKeys.generate()), free port
    app.config["KOUDAI_WECHATPAY"] = sandbox.settings_for_client()
    ...
    sandbox.send_notify(order_number, duplicate=3)   # redeliver, as the gateway does
    sandbox.stop()

``create_wechatpay_sandbox(...)`` is the bare WSGI app, for hosting it some other way.
"""

from __future__ import annotations

from koudai_flask.connectors.sandbox.wechatpay.gateway import (
    GatewayError,
    Transaction,
    WechatPayGateway,
)
from koudai_flask.connectors.sandbox.wechatpay.keys import SandboxKeys
from koudai_flask.connectors.sandbox.wechatpay.server import (
    EXTENSION,
    LoopbackServer,
    WechatPaySandbox,
    create_wechatpay_sandbox,
)

__all__ = [
    "EXTENSION",
    "GatewayError",
    "LoopbackServer",
    "SandboxKeys",
    "Transaction",
    "WechatPayGateway",
    "WechatPaySandbox",
    "create_wechatpay_sandbox",
]
