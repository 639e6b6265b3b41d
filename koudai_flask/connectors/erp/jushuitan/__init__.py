"""The Jushuitan (聚水潭) ERP adapter: open platform v2 (PROTOCOLS §6.1), wire protocol only.

It signs and posts calls, pages through answers and returns frozen dataclasses; it never
touches the database. Errors are the connector errors. A loopback sandbox that speaks the
same protocol is ``connectors.sandbox.jushuitan``::

    client = JushuitanClient(base_url, app_key, app_secret, access_token,
                             refresh_token=refresh_token)
    for row in client.query_inventory(sku_ids=["SKU-1", "SKU-2"]):
        print(row.sku_id, row.available)
"""

from __future__ import annotations

from koudai_flask.connectors.erp.jushuitan.carriers import (
    CARRIER_TO_LC_ID,
    LC_ID_TO_CARRIER,
    UnknownCarrier,
    carrier_for_lc_id,
    lc_id_for_carrier,
)
from koudai_flask.connectors.erp.jushuitan.client import (
    PRODUCTION_URL,
    SANDBOX_URL,
    JushuitanClient,
    classify_error,
)
from koudai_flask.connectors.erp.jushuitan.records import (
    SHOP_STATUSES,
    InventoryRow,
    JushuitanOrder,
    JushuitanToken,
    OrderItem,
    OrderPay,
    ShipmentItem,
    ShipmentRow,
    UploadResult,
)
from koudai_flask.connectors.erp.jushuitan.signing import sign, verify

__all__ = [
    "CARRIER_TO_LC_ID",
    "LC_ID_TO_CARRIER",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "SHOP_STATUSES",
    "InventoryRow",
    "JushuitanClient",
    "JushuitanOrder",
    "JushuitanToken",
    "OrderItem",
    "OrderPay",
    "ShipmentItem",
    "ShipmentRow",
    "UnknownCarrier",
    "UploadResult",
    "carrier_for_lc_id",
    "classify_error",
    "lc_id_for_carrier",
    "sign",
    "verify",
]
