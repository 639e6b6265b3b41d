"""The TOP sandbox running on a loopback socket, with the helpers tests and demos use."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.connectors.sandbox.taobao import catalog, memos, shop, trades
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
        self.state.base_url = self.url  # picture URLs point back at this server

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

    def fail_next(
        self, n: int, kind: str, seconds: float | None = None, *, method: str | None = None
    ) -> None:
        """Fail the next ``n`` valid calls (of ``method`` only, if given) with ``kind``:

        "5xx" (HTTP 502), "timeout" (sleeps ``seconds``, 3 by default, past the caller's
        timeout; the call still runs afterwards), "slow" (answers after ``seconds``, 1 by
        default), "rate_limit" (code 7, "This ban will last for N more seconds", N =
        ``seconds`` or ``ban_seconds``), "ban" (the same code 7 on every call until N seconds
        of the sandbox clock pass; :meth:`advance` lifts it), "session_expired" (code 27),
        "isp", "isv" or "bad_json".
        """
        self.state.fail_next(n, kind, seconds, method)

    def duplicate_next(self, n: int) -> None:
        """Deliver each of the next ``n`` TMC messages twice, the copy right after it."""
        self.state.duplicate_next(n)

    def shuffle_next(self, seed: int = 0) -> None:
        """Hand out the next non-empty TMC consume batch in a shuffled order."""
        self.state.shuffle_next(seed)

    @property
    def calls(self) -> Counter[str]:
        """Requests received per TOP method name, refused ones included."""
        return self.state.calls

    # -- shop helpers ----------------------------------------------------------------------

    def add_item(self, title: str, price: str, num: int = 0, **options: Any) -> SandboxItem:
        return shop.add_item(self.state, title, price, num, **options)

    def seed_catalog(
        self,
        items: int = 200,
        skus_per_item: int = 3,
        *,
        seed: int = 0,
        pictures: int = 2,
        modified: datetime | None = None,
    ) -> list[SandboxItem]:
        """``items`` generated items with colour × size SKUs, prices, pictures, and outer
        ids on every odd item; the same seed gives the same catalogue (see ``catalog``)."""
        return catalog.seed_catalog(
            self.state, items, skus_per_item, seed=seed, pictures=pictures, modified=modified
        )

    def edit_item(
        self,
        num_iid: int,
        *,
        title: str | None = None,
        price: str | None = None,
        desc: str | None = None,
        outer_id: str | None = None,
        approve_status: str | None = None,
        sku_prices: Mapping[int, str] | None = None,
        sku_outer_ids: Mapping[int, str] | None = None,
        pictures: int | None = None,
        modified: datetime | None = None,
    ) -> SandboxItem:
        """The seller edits an item; its ``modified`` moves forward (at least one second
        unless given). Publishes nothing: a catalogue import reads edits by modified time."""
        return catalog.edit_item(
            self.state,
            num_iid,
            title=title,
            price=price,
            desc=desc,
            outer_id=outer_id,
            approve_status=approve_status,
            sku_prices=sku_prices,
            sku_outer_ids=sku_outer_ids,
            pictures=pictures,
            modified=modified,
        )

    def set_quantity(self, num_iid: int, quantity: int, sku_id: int | None = None) -> None:
        """Set stock as the seller would in the Taobao back office (ItemStockChanged)."""
        shop.set_quantity(self.state, num_iid, quantity, sku_id)

    def quantity_of(self, num_iid: int, sku_id: int | None = None) -> int:
        return shop.quantity_of(self.state, num_iid, sku_id)

    def add_trade(self, lines: list[tuple[int, int | None, int]], **options: Any) -> dict[str, Any]:
        """A buyer's trade for ``(num_iid, sku_id, num)`` lines; takes the stock at once and
        publishes TradeCreate, ItemStockChanged per line and (if ``paid``) TradeBuyerPay.
        Options: ``buyer_nick``, ``post_fee``, ``paid``, ``modified``, ``tid``,
        ``buyer_message``, ``seller_memo``, ``seller_flag``."""
        return trades.add_trade(self.state, lines, **options)

    def pay_trade(self, tid: int, *, modified: datetime | None = None) -> dict[str, Any]:
        return trades.pay_trade(self.state, tid, modified=modified)

    def close_trade(
        self, tid: int, *, restock: bool = True, modified: datetime | None = None
    ) -> dict[str, Any]:
        """Close a trade (TradeClose) and give its stock back (ItemStockChanged per line)."""
        return trades.close_trade(self.state, tid, restock=restock, modified=modified)

    def ask_refund(
        self,
        tid: int,
        oid: int | None = None,
        *,
        returning: bool = False,
        modified: datetime | None = None,
    ) -> dict[str, Any]:
        """The buyer asks for a refund of line ``oid`` (None: every line), RefundCreated."""
        return trades.ask_refund(self.state, tid, oid, returning=returning, modified=modified)

    def close_refund(
        self,
        tid: int,
        oid: int | None = None,
        *,
        refused: bool = False,
        modified: datetime | None = None,
    ) -> dict[str, Any]:
        """The request ends without money: withdrawn, or ``refused`` by the seller."""
        return trades.close_refund(self.state, tid, oid, refused=refused, modified=modified)

    def agree_refund(
        self, tid: int, oid: int | None = None, *, modified: datetime | None = None
    ) -> dict[str, Any]:
        """The seller agrees: the asked lines are refunded; with all of them, the trade
        closes (TRADE_CLOSED), otherwise TradePartlyRefund."""
        return trades.agree_refund(self.state, tid, oid, modified=modified)

    def finish_trade(self, tid: int, *, modified: datetime | None = None) -> dict[str, Any]:
        """The buyer confirms receipt of a shipped trade (TradeSuccess)."""
        return trades.finish_trade(self.state, tid, modified=modified)

    def set_memo(
        self,
        tid: int,
        memo: str | None = None,
        flag: int | None = None,
        *,
        modified: datetime | None = None,
    ) -> dict[str, Any]:
        """The seller changes a trade's memo and/or flag in the Taobao back office (``None``
        keeps it; "" clears the memo): ``modified`` moves on and TradeMemoModified is
        published, unless nothing changed."""
        return memos.update_memo(
            self.state, tid, memo=memo or "", flag=flag, reset=memo == "", modified=modified
        )

    def memo_of(self, tid: int) -> tuple[str, int]:
        """The trade's ``(seller_memo, seller_flag)`` as Taobao keeps them."""
        return memos.memo_of(self.state, tid)

    def shipment_of(self, tid: int) -> tuple[str, str] | None:
        """``(company_code, out_sid)`` recorded by ``taobao.logistics.offline.send``."""
        return self.state.shipments.get(tid)

    def publish(self, topic: str, content: dict[str, Any]) -> TmcEntry:
        return self.state.publish(topic, content)

    def published(self, topic: str | None = None) -> list[tuple[str, Mapping[str, Any]]]:
        """Every message published so far (of ``topic``), as ``(topic, content)``, oldest
        first."""
        with self.state.lock:
            entries = [e for e in self.state.messages if topic is None or e.topic == topic]
        return [(e.topic, json.loads(e.content)) for e in entries]

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
                    {
                        "properties": "1627207:28320",
                        "properties_name": "1627207:28320:颜色分类:白色",
                        "quantity": 10,
                        "outer_id": "SHIRT-W",
                    },
                    {
                        "properties": "1627207:28338",
                        "properties_name": "1627207:28338:颜色分类:蓝色",
                        "quantity": 8,
                        "outer_id": "SHIRT-B",
                    },
                ],
            ),
            self.add_item(
                "羊毛袜 Wool socks",
                "25.00",
                outer_id="SOCK",
                skus=[
                    {
                        "properties": "20509:28315",
                        "properties_name": "20509:28315:尺码:M",
                        "quantity": 40,
                        "outer_id": "SOCK-M",
                    },
                    {
                        "properties": "20509:28316",
                        "properties_name": "20509:28316:尺码:L",
                        "quantity": 35,
                        "outer_id": "SOCK-L",
                    },
                ],
            ),
        ]

    def __enter__(self) -> TaobaoSandbox:
        return self
