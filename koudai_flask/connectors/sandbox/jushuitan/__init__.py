"""A Jushuitan open platform v2 server on a loopback socket, faithful to the wire (§6.1, §8.6).

It verifies every call as the platform does (app key, timestamp ±10 min, sign, access
token), keeps stock per SKU and uploaded orders in memory, ships orders on request,
refreshes tokens, counts calls and can be told to fail::

    sandbox = JushuitanSandbox()                 # a fresh app and token pair, free port
    client = JushuitanClient(sandbox.url, sandbox.app_key, sandbox.app_secret,
                             sandbox.access_token, refresh_token=sandbox.refresh_token)
    sandbox.set_stock("SKU-1", 12)
    sandbox.fail_next(1, "rate_limit")
    sandbox.stop()
"""

from __future__ import annotations

from koudai_flask.connectors.sandbox.jushuitan.gateway import EXTENSION, create_jushuitan_sandbox
from koudai_flask.connectors.sandbox.jushuitan.server import DEFAULT_SHOP_ID, JushuitanSandbox
from koudai_flask.connectors.sandbox.jushuitan.state import FAULT_KINDS, JstError, JstState

__all__ = [
    "DEFAULT_SHOP_ID",
    "EXTENSION",
    "FAULT_KINDS",
    "JstError",
    "JstState",
    "JushuitanSandbox",
    "create_jushuitan_sandbox",
]
