"""The Taobao connector: a linked shop as a backend of the sync engine (``kind="taobao"``).

It holds a :class:`TaobaoAdapter` for the shop and maps TOP's records onto the plain records
of :mod:`koudai_flask.connectors.base` (the mapper), both ways:

- stock out: absolute quantities (type 1), one ``taobao.skus.quantity.update`` per item for
  its SKUs, ``taobao.item.quantity.update`` for an item without SKUs;
- stock in: ``items.onsale.get`` pages of 200 and ``item.skus.get`` for 40 items at a time,
  so a full read of 10,000 SKUs takes a few dozen calls;
- trades: ``trades.sold.increment.get`` windows (the engine keeps the cursor) and
  ``trade.fullinfo.get``, their status mapped to ours (:data:`TRADE_STATES`);
- TMC: trade topics become "trade changed" messages (the engine then fetches the trade, so
  duplicates and disorder do not matter) and ``ItemStockChanged`` a quantity seen there;
- shipments: ``logistics.offline.send`` with TOP's company code for our carrier;
- the seller's memo and flag: read with the trade, set with ``trade.memo.update``
  (``TradeMemoModified`` brings a change made in the seller's back office).

Settings: ``gateway_url``, ``app_key``, ``app_secret``, ``sign_method`` (md5, hmac,
hmac-sha256), the seller's tokens sealed by ``tokens.seal_token``
(a plain ``session`` given at creation is sealed by :meth:`prepare_settings`), ``oauth_base``
for renewing them, ``tmc_group`` and ``timeout``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from koudai_flask.connectors.base import (
    EVENTS,
    FETCH_ORDERS,
    FETCH_STOCK,
    OVERWRITE,
    PUSH_MEMO,
    PUSH_SHIPMENT,
    PUSH_STOCK,
    ChannelMessage,
    Connector,
    ListingRef,
    RemoteOrder,
    RemoteOrderLine,
    RemoteStock,
    StockPush,
)
from koudai_flask.connectors.errors import AuthExpired, PermanentFailure
from koudai_flask.connectors.logistics.carriers import top_code
from koudai_flask.connectors.taobao.api import FULL, TaobaoAdapter
from koudai_flask.connectors.taobao.client import SIGN_METHODS, TopClient
from koudai_flask.connectors.taobao.oauth import OAUTH_BASE, TaobaoOAuth
from koudai_flask.connectors.taobao.records import Trade, yuan_to_fen
from koudai_flask.connectors.taobao.tokens import decrypt_token, encrypt_token, seal_token
from koudai_flask.errors import ValidationError

# TOP trade status (§1.6) → our remote states (connectors.base.REMOTE_STATES).
TRADE_STATES = {
    "TRADE_NO_CREATE_PAY": "pending_payment",
    "WAIT_BUYER_PAY": "pending_payment",
    "PAY_PENDING": "pending_payment",
    "WAIT_PRE_AUTH_CONFIRM": "pending_payment",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "SELLER_CONSIGNED_PART": "paid",
    "PAID_FORBID_CONSIGN": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "shipped",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "refunded",  # closed after payment: the buyer's refund succeeded
    "TRADE_CLOSED_BY_TAOBAO": "cancelled",  # closed before payment
}
# A line's refund_status (子订单退款状态) → connectors.base.REMOTE_REFUNDS. A request the
# seller refused (SELLER_REFUSE_BUYER) or the buyer withdrew (CLOSED) is no refund.
REFUND_STATES = {
    "WAIT_SELLER_AGREE": "asked",
    "WAIT_BUYER_RETURN_GOODS": "asked",
    "WAIT_SELLER_CONFIRM_GOODS": "asked",
    "SUCCESS": "refunded",
}
TRADE_TOPICS = frozenset(
    {
        "taobao_trade_TradeCreate",
        "taobao_trade_TradeBuyerPay",
        "taobao_trade_TradeClose",
        "taobao_trade_TradeSuccess",
        "taobao_trade_TradeSellerShip",
        "taobao_trade_TradeChanged",
        "taobao_trade_TradePartlyRefund",
        # The seller's memo or flag changed (in the back office, or by our own push).
        "taobao_trade_TradeMemoModified",
        # §1.8's refund topics carry the trade's tid too: its lines' refund_status changed.
        "taobao_refund_RefundCreated",
        "taobao_refund_RefundSuccess",
        "taobao_refund_RefundClosed",
    }
)
STOCK_TOPIC = "taobao_item_ItemStockChanged"
SKUS_PER_UPDATE = 20  # SKUs of one item per skus.quantity.update call


class TaobaoConnector(Connector):
    kind: ClassVar[str] = "taobao"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {PUSH_STOCK, FETCH_STOCK, FETCH_ORDERS, PUSH_SHIPMENT, PUSH_MEMO, EVENTS}
    )
    stock_policy: ClassVar[str] = OVERWRITE
    secret_settings: ClassVar[tuple[str, ...]] = (
        "app_secret",
        "access_token",
        "refresh_token",
        "session",
    )

    def __init__(self, name: str, settings: Mapping[str, Any], *, secret_key: str = "") -> None:
        super().__init__(name, settings, secret_key=secret_key)
        self._adapter: TaobaoAdapter | None = None
        self.refusals: list[str] = []

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        method = settings.get("sign_method", "md5")
        if method not in SIGN_METHODS:
            raise ValidationError(
                f"sign_method must be one of {', '.join(SIGN_METHODS)}, got {method!r}",
                {"sign_method": ["unknown"]},
            )

    @classmethod
    def prepare_settings(cls, settings: Mapping[str, Any], secret_key: str) -> dict[str, Any]:
        """Seal a plain ``session`` given by hand, so no token is stored in clear."""
        prepared = dict(settings)
        session = prepared.pop("session", None)
        if session:
            prepared["access_token"] = encrypt_token(secret_key, str(session))
        return prepared

    # -- the adapter ---------------------------------------------------------------------

    @property
    def adapter(self) -> TaobaoAdapter:
        if self._adapter is None:
            settings = self.settings
            for name in ("gateway_url", "app_key", "app_secret"):
                if not settings.get(name):
                    raise PermanentFailure(f"taobao channel {self.name}: setting {name} is missing")
            sealed = settings.get("access_token")
            if not sealed:
                raise AuthExpired(f"taobao channel {self.name} is not linked to a shop yet")
            client = TopClient(
                str(settings["gateway_url"]),
                str(settings["app_key"]),
                str(settings["app_secret"]),
                session=decrypt_token(self.secret_key, str(sealed)),
                sign_method=str(settings.get("sign_method", "md5")),
                timeout=float(settings.get("timeout", 15.0)),
            )
            self._adapter = TaobaoAdapter(client)
        return self._adapter

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.client.close()
            self._adapter = None

    def renew_auth(self) -> dict[str, Any] | None:
        sealed = self.settings.get("refresh_token")
        if not sealed:
            return None
        oauth = TaobaoOAuth(
            str(self.settings["app_key"]),
            str(self.settings["app_secret"]),
            base=str(self.settings.get("oauth_base") or OAUTH_BASE),
        )
        token = oauth.refresh(decrypt_token(self.secret_key, str(sealed)))
        renewed = seal_token(self.secret_key, token)
        self.settings.update(renewed)
        self.close()
        return renewed

    # -- stock ---------------------------------------------------------------------------

    def push_stock(self, pushes: Sequence[StockPush]) -> list[StockPush]:
        by_item: dict[str, list[StockPush]] = {}
        for push in pushes:
            by_item.setdefault(push.listing.external_item_id, []).append(push)
        accepted: list[StockPush] = []
        self.refusals = []
        for item_id, item_pushes in by_item.items():
            whole = [p for p in item_pushes if not p.listing.external_sku_id]
            skus = [p for p in item_pushes if p.listing.external_sku_id]
            try:
                for push in whole[-1:]:  # an item without SKUs has one quantity: the latest
                    self.adapter.update_item_quantity(int(item_id), push.quantity, type=FULL)
                    accepted.extend(whole)
                for start in range(0, len(skus), SKUS_PER_UPDATE):
                    chunk = skus[start : start + SKUS_PER_UPDATE]
                    self.adapter.update_skus_quantity(
                        int(item_id),
                        {int(p.listing.external_sku_id): p.quantity for p in chunk},
                        type=FULL,
                    )
                    accepted.extend(chunk)
            except PermanentFailure as exc:
                # This item is refused (deleted, off the shelf): the others still go out.
                self.refusals.append(f"item {item_id}: {exc.message}")
        return accepted

    def fetch_stock(self, listings: Sequence[ListingRef] | None = None) -> Iterator[RemoteStock]:
        if listings is None:
            items = list(self.adapter.all_onsale("num_iid,num,outer_id,modified"))
        else:
            wanted = {int(ref.external_item_id) for ref in listings}
            items = [
                i for i in self.adapter.all_onsale("num_iid,num,outer_id") if i.num_iid in wanted
            ]
        skus = self.adapter.skus_of(i.num_iid for i in items)
        with_skus = {sku.num_iid for sku in skus}
        for item in items:
            if item.num_iid not in with_skus:
                yield RemoteStock(str(item.num_iid), "", item.num, item.outer_id)
        for sku in skus:
            yield RemoteStock(str(sku.num_iid), str(sku.sku_id), sku.quantity, sku.outer_id)

    # -- trades --------------------------------------------------------------------------

    def fetch_orders(self, since: datetime, until: datetime) -> Iterator[RemoteOrder]:
        page_no = 1
        while True:
            page = self.adapter.trades_increment(since, until, page_no=page_no, page_size=100)
            for trade in page.trades:
                yield self.map_trade(trade)
            if not page.has_next:
                return
            page_no += 1

    def fetch_order(self, external_id: str) -> RemoteOrder:
        return self.map_trade(self.adapter.trade(int(external_id)))

    @staticmethod
    def map_trade(trade: Trade) -> RemoteOrder:
        """TOP's trade as our remote order (prices per unit in fen, status in our words)."""
        if trade.modified is None:
            raise PermanentFailure(f"taobao trade {trade.tid} has no modified time")
        status = TRADE_STATES.get(trade.status)
        if status is None:
            raise PermanentFailure(f"taobao trade {trade.tid}: unknown status {trade.status!r}")
        lines = tuple(
            RemoteOrderLine(
                external_item_id=str(line.num_iid),
                external_sku_id=str(line.sku_id or ""),
                quantity=line.num,
                price=yuan_to_fen(line.price) if line.price else 0,
                sku_code=line.outer_sku_id or line.outer_iid,
                title=line.title,
                external_line_id=str(line.oid) if line.oid else "",
                refund=REFUND_STATES.get(line.refund_status, "none"),
                paid=yuan_to_fen(line.payment) if line.payment else 0,
            )
            for line in trade.orders
        )
        return RemoteOrder(
            external_id=str(trade.tid),
            status=status,
            remote_status=trade.status,
            modified=trade.modified,
            lines=lines,
            total=trade.payment_fen if trade.payment else 0,
            shipping_fee=yuan_to_fen(trade.post_fee) if trade.post_fee else 0,
            buyer=trade.buyer_nick,
            memo=trade.seller_memo or "",
            flag=trade.seller_flag or 0,
            buyer_message=trade.buyer_message,
        )

    def push_shipment(self, external_id: str, carrier: str, tracking_number: str) -> None:
        ok = self.adapter.offline_send(int(external_id), tracking_number, top_code(carrier))
        if not ok:
            raise PermanentFailure(f"taobao refused the shipment of trade {external_id}")

    def push_memo(self, external_id: str, memo: str, flag: int) -> None:
        self.adapter.update_memo(int(external_id), memo, flag)

    # -- TMC -----------------------------------------------------------------------------

    def fetch_messages(self) -> list[ChannelMessage]:
        group = str(self.settings.get("tmc_group") or "default")
        return [
            self._message(m.id, m.topic, m.content) for m in self.adapter.tmc_consume(group, 200)
        ]

    @staticmethod
    def _message(message_id: int, topic: str, content: Mapping[str, Any]) -> ChannelMessage:
        if topic in TRADE_TOPICS and content.get("tid") is not None:
            return ChannelMessage(str(message_id), "trade", {"external_id": str(content["tid"])})
        if topic == STOCK_TOPIC and content.get("num_iid") is not None:
            sku_id = content.get("sku_id")
            quantity = content.get("sku_num") if sku_id else content.get("num")
            return ChannelMessage(
                str(message_id),
                "stock",
                {
                    "external_item_id": str(content["num_iid"]),
                    "external_sku_id": str(sku_id or ""),
                    "quantity": None if quantity is None else int(quantity),
                },
            )
        return ChannelMessage(str(message_id), "other", dict(content))

    def confirm_messages(self, message_ids: Iterable[str]) -> None:
        ids = [int(i) for i in message_ids]
        group = str(self.settings.get("tmc_group") or "default")
        for start in range(0, len(ids), 200):
            self.adapter.tmc_confirm(ids[start : start + 200], group)


__all__ = ["REFUND_STATES", "TRADE_STATES", "TaobaoConnector"]
