"""The TOP sandbox running on a loopback socket, with the helpers tests and demos use."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.connectors.sandbox.taobao import shop
from koudai_flask.connectors.sandbox.taobao.gateway import create_taobao_sandbox
from koudai_flask.connectors.sandbox.taobao.state import Grant, SandboxItem, TmcEntry, TopState


class TaobaoSandbox(LoopbackServer):
    """A TOP gateway plus ``oauth.taobao.com`` stand-in: ``.url``, ``.gateway_url``, ``.stop()``.

    One app (``app_key``/``app_secret``) is registered; :meth:`issue_session` gives a
    seller session without the browser round trip.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        app_key: str | None = None,
        app_secret: str | None = None,
        visibility_timeout: float = 30.0,
        ban_seconds: int = 5,
    ) -> None:
        self.state = TopState(visibility_timeout=visibility_timeout, ban_seconds=ban_seconds)
        self.app_key = self.state.register_app(app_key, app_secret)
        self.app = create_taobao_sandbox(self.state)
        super().__init__(self.app, port=port)

    def __repr__(self) -> str:
        return f"TaobaoSandbox({self.url!r}, app_key={self.app_key!r})"

    @property
    def app_secret(self) -> str:
        return self.state.apps[self.app_key]

    @property
    def gateway_url(self) -> str:
        return f"{self.url}/router/rest"

    @property
    def oauth_base(self) -> str:
        return self.url

    def settings_for_client(self, session: str | None = None) -> dict[str, Any]:
        """The settings a shop needs to call this sandbox (the app secret included)."""
        settings: dict[str, Any] = {
            "gateway_url": self.gateway_url,
            "oauth_base": self.oauth_base,
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "sign_method": "md5",
        }
        if session:
            settings["session"] = session
        return settings

    # -- sessions and faults ---------------------------------------------------------------

    def issue_session(self) -> Grant:
        """A fresh seller grant, as if the owner had clicked 授权 Authorize."""
        return self.state.issue_grant(self.app_key)

    def expire_session(self, access_token: str) -> None:
        self.state.expire_session(access_token)

    def latency(self, seconds: float) -> None:
        """Delay every gateway answer by ``seconds`` (0 to stop)."""
        self.state.latency = seconds

    def fail_next(self, n: int, kind: str, seconds: float = 3.0) -> None:
        """Fail the next ``n`` valid calls: "5xx", "timeout" (sleeps ``seconds``),
        "rate_limit" (code 7), "session_expired" (27), "isp", "isv" or "bad_json"."""
        self.state.fail_next(n, kind, seconds)

    @property
    def calls(self) -> Counter[str]:
        """Requests received per TOP method name, refused ones included."""
        return self.state.calls

    # -- shop helpers ----------------------------------------------------------------------

    def add_item(self, title: str, price: str, num: int = 0, **options: Any) -> SandboxItem:
        return shop.add_item(self.state, title, price, num, **options)

    def set_quantity(self, num_iid: int, quantity: int, sku_id: int | None = None) -> None:
        """Set stock as the seller would in the Taobao back office."""
        with self.state.lock:
            item = shop.find_item(self.state, num_iid)
            shop.change_quantity(self.state, item, shop.find_sku(item, sku_id, None), quantity, 1)

    def quantity_of(self, num_iid: int, sku_id: int | None = None) -> int:
        return shop.quantity_of(self.state, num_iid, sku_id)

    def add_trade(self, lines: list[tuple[int, int | None, int]], **options: Any) -> dict[str, Any]:
        """A buyer's trade for ``(num_iid, sku_id, num)`` lines; publishes TMC messages."""
        return shop.add_trade(self.state, lines, **options)

    def close_trade(
        self, tid: int, *, restock: bool = True, modified: datetime | None = None
    ) -> dict[str, Any]:
        return shop.close_trade(self.state, tid, restock=restock, modified=modified)

    def shipment_of(self, tid: int) -> tuple[str, str] | None:
        """``(company_code, out_sid)`` recorded by ``taobao.logistics.offline.send``."""
        return self.state.shipments.get(tid)

    def publish(self, topic: str, content: dict[str, Any]) -> TmcEntry:
        return self.state.publish(topic, content)

    def advance(self, seconds: float) -> None:
        """Move the TMC clock forward, so unconfirmed messages become due again."""
        self.state.advance(seconds)

    def seed_demo(self) -> list[SandboxItem]:
        """A few items for a demo: one plain, two with colour/size SKUs."""
        return [
            self.add_item("帆布托特包 Canvas tote", "59.00", 30, outer_id="TOTE-1"),
            self.add_item(
                "牛津纺衬衫 Oxford shirt",
                "129.00",
                outer_id="SHIRT",
                skus=[
                    {"properties_name": "颜色:白色", "quantity": 10, "outer_id": "SHIRT-W"},
                    {"properties_name": "颜色:蓝色", "quantity": 8, "outer_id": "SHIRT-B"},
                ],
            ),
            self.add_item(
                "羊毛袜 Wool socks",
                "25.00",
                outer_id="SOCK",
                skus=[
                    {"properties_name": "尺码:M", "quantity": 40, "outer_id": "SOCK-M"},
                    {"properties_name": "尺码:L", "quantity": 35, "outer_id": "SOCK-L"},
                ],
            ),
        ]

    def __enter__(self) -> TaobaoSandbox:
        return self
