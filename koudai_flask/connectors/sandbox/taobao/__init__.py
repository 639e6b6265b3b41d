"""A Taobao Open Platform gateway on a loopback socket, faithful to the wire (PROTOCOLS §8.1).

It verifies every request as TOP does (sign in md5/hmac/hmac-sha256, timestamp ±10 min,
app key, session), answers the ``simplify=false`` shapes, keeps items/SKUs, trades and TMC
queues in memory, serves item pictures and a live stock page, issues sessions through its
OAuth pages, and can be told to fail::

    sandbox = TaobaoSandbox()                    # a fresh app key and secret, free port
    sandbox.seed_catalog(items=200, skus_per_item=3, seed=1)
    grant = sandbox.issue_session()
    client = TopClient(sandbox.gateway_url, sandbox.app_key, sandbox.app_secret,
                       session=grant.access_token)
    sandbox.fail_next(1, "rate_limit")           # or "ban", "timeout", "slow", "5xx", ...
    sandbox.duplicate_next(3); sandbox.shuffle_next()   # TMC at-least-once, out of order
    sandbox.stop()

Every stock change publishes ``taobao_item_ItemStockChanged`` and every trade step its
``taobao_trade_*`` message (``state``, ``shop``, ``trades``); a change of the seller's memo or
flag, by ``taobao.trade.memo.update`` or by the seller (``set_memo``, the memo page),
publishes ``taobao_trade_TradeMemoModified`` (``memos``).
"""

from __future__ import annotations

from koudai_flask.connectors.sandbox.taobao.gateway import EXTENSION, create_taobao_sandbox
from koudai_flask.connectors.sandbox.taobao.server import TaobaoSandbox
from koudai_flask.connectors.sandbox.taobao.state import (
    COMPANY_CODES,
    FAULT_KINDS,
    Grant,
    SandboxItem,
    SandboxSku,
    TopError,
    TopState,
)

__all__ = [
    "COMPANY_CODES",
    "EXTENSION",
    "FAULT_KINDS",
    "Grant",
    "SandboxItem",
    "SandboxSku",
    "TaobaoSandbox",
    "TopError",
    "TopState",
    "create_taobao_sandbox",
]
