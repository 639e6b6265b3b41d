"""A stand-in for the Alipay open-platform gateway, served on a real loopback socket.

It speaks the wire format of PROTOCOLS.md §4 from the other side, written independently of
:mod:`koudai_flask.payments.alipay` so that a shared mistake cannot pass unseen: it checks
each request's RSA2 signature with the app's public key (``sign_type`` included in the
signed string), serves ``alipay.trade.wap.pay`` / ``page.pay`` as a cashier page, posts a
signed ``trade_status_sync`` notify that must be answered with the literal ``success``,
sends the buyer back with signed return parameters, and answers ``alipay.trade.query`` /
``close`` / ``refund`` signed over the exact JSON text of the response member. State lives
in memory::

    keys = SandboxKeys.generate()
    sandbox = AlipaySandbox(keys).start()          # 127.0.0.1, a free port
    app.config["KOUDAI_ALIPAY"] = keys.settings_for_client(sandbox.url)
    ...
    sandbox.stop()
"""

from __future__ import annotations

from koudai_flask.connectors.sandbox.alipay.gateway import AlipayGateway, GatewayError, Trade
from koudai_flask.connectors.sandbox.alipay.keys import (
    SandboxKeys,
    rsa2_sign,
    rsa2_verify,
    sign_callback,
)
from koudai_flask.connectors.sandbox.alipay.server import AlipaySandbox

__all__ = [
    "AlipayGateway",
    "AlipaySandbox",
    "GatewayError",
    "SandboxKeys",
    "Trade",
    "rsa2_sign",
    "rsa2_verify",
    "sign_callback",
]
