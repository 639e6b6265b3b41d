"""The Taobao Open Platform (TOP) adapter: signing, transport, typed calls, OAuth, tokens.

Only the wire protocol (PROTOCOLS §1) lives here; bindings, mappers and the sync rules are
elsewhere. A sandbox that speaks the same protocol is ``connectors.sandbox.taobao``::

    client = TopClient(gateway_url, app_key, app_secret, session=access_token)
    adapter = TaobaoAdapter(client)
    page = adapter.items_onsale(page_no=1, page_size=100)
"""

from __future__ import annotations

from koudai_flask.connectors.taobao.api import DELTA, FULL, TaobaoAdapter
from koudai_flask.connectors.taobao.client import TopClient
from koudai_flask.connectors.taobao.oauth import OAuthToken, TaobaoOAuth, authorize_url
from koudai_flask.connectors.taobao.records import (
    Item,
    ItemPage,
    Sku,
    StockLevel,
    TmcMessage,
    Trade,
    TradeOrder,
    TradePage,
)

__all__ = [
    "DELTA",
    "FULL",
    "Item",
    "ItemPage",
    "OAuthToken",
    "Sku",
    "StockLevel",
    "TaobaoAdapter",
    "TaobaoOAuth",
    "TmcMessage",
    "TopClient",
    "Trade",
    "TradeOrder",
    "TradePage",
    "authorize_url",
]
