"""The Jushuitan sandbox on a loopback socket, with the methods tests and demos call."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import datetime
from typing import Any

from koudai_flask.connectors.erp.jushuitan.records import format_time
from koudai_flask.connectors.sandbox.jushuitan.gateway import create_jushuitan_sandbox
from koudai_flask.connectors.sandbox.jushuitan.state import JstState, Shipment, Stock
from koudai_flask.connectors.sandbox.loopback import LoopbackServer

DEFAULT_SHOP_ID = 10001  # the merchant's own-mall shop orders are uploaded into


class JushuitanSandbox(LoopbackServer):
    """One Jushuitan company with one app and one authorized token pair: ``.url``, ``.stop()``.

    ``access_token``/``refresh_token`` are the current pair: a refresh through the API
    replaces them, as it does on the platform.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        app_key: str | None = None,
        app_secret: str | None = None,
        shop_id: int = DEFAULT_SHOP_ID,
    ) -> None:
        self.state = JstState(
            app_key or secrets.token_hex(16), app_secret or secrets.token_hex(16), shop_id
        )
        self.app = create_jushuitan_sandbox(self.state)
        super().__init__(self.app, port=port)

    def __repr__(self) -> str:
        return f"JushuitanSandbox({self.url!r}, app_key={self.app_key!r})"

    @property
    def app_key(self) -> str:
        return self.state.app_key

    @property
    def app_secret(self) -> str:
        return self.state.app_secret

    @property
    def shop_id(self) -> int:
        return self.state.shop_id

    @property
    def access_token(self) -> str:
        return self.state.current.access_token

    @property
    def refresh_token(self) -> str:
        return self.state.current.refresh_token

    def settings_for_client(self) -> dict[str, Any]:
        """What a shop needs to call this sandbox (the secret and the tokens included)."""
        return {
            "base_url": self.url,
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "shop_id": self.shop_id,
        }

    # -- tokens and faults -----------------------------------------------------------------

    def expire_token(self, access_token: str | None = None) -> None:
        """Make the access token (the current one by default) answer code 100."""
        self.state.expire(access_token or self.access_token)

    def latency(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` (0 to stop)."""
        self.state.latency = seconds

    def fail_next(self, n: int, kind: str, seconds: float = 3.0) -> None:
        """Fail the next ``n`` well-signed calls: "rate_limit" (code 199), "server_error"
        (HTTP 500), "timeout" (sleeps ``seconds``, then answers) or "token_expired" (100)."""
        self.state.fail_next(n, kind, seconds)

    @property
    def calls(self) -> Counter[str]:
        """Requests received per path, refused ones included."""
        return self.state.calls

    # -- the ERP's side --------------------------------------------------------------------

    def set_stock(
        self,
        sku_id: str,
        qty: int,
        order_lock: int = 0,
        *,
        modified: datetime | None = None,
        **fields: Any,
    ) -> Stock:
        """Set a SKU's stock as a warehouse count would; ``fields``: i_id, pick_lock,
        virtual_qty, lock_qty, name. Stamps the modified time (now, or ``modified``)."""
        if modified is not None:
            format_time(modified)  # a naive datetime is refused here
            fields["modified"] = modified.replace(microsecond=0)
        return self.state.set_stock(sku_id, qty, order_lock, **fields)

    def stock_of(self, sku_id: str) -> Stock:
        with self.state.lock:
            return self.state.stock[sku_id]

    def orders(self) -> list[dict[str, Any]]:
        """The uploaded orders in o_id order: the last uploaded body plus o_id and shipment."""
        with self.state.lock:
            kept = sorted(self.state.orders.values(), key=lambda o: o.o_id)
            return [
                {
                    **order.body,
                    "o_id": order.o_id,
                    "shipment": None
                    if order.shipment is None
                    else (order.shipment.lc_id, order.shipment.l_id),
                }
                for order in kept
            ]

    def ship(
        self, so_id: str, lc_id: str, l_id: str, *, send_date: datetime | None = None
    ) -> Shipment:
        """Ship an uploaded order with carrier ``lc_id`` and waybill ``l_id``."""
        return self.state.ship(so_id, lc_id, l_id, send_date)

    def seed_demo(self) -> list[Stock]:
        """A few SKUs for a demo."""
        return [
            self.set_stock("TOTE-1", 30, i_id="TOTE", name="帆布托特包 Canvas tote"),
            self.set_stock("SHIRT-W", 10, 2, i_id="SHIRT", name="牛津纺衬衫 白色"),
            self.set_stock("SHIRT-B", 8, i_id="SHIRT", name="牛津纺衬衫 蓝色"),
        ]

    def __enter__(self) -> JushuitanSandbox:
        return self
