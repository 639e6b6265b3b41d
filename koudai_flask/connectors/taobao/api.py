"""The Taobao adapter: one typed method per TOP call we use, returning plain records.

It speaks the wire protocol (PROTOCOLS §1.6, §1.8) and nothing else: no database, no sync
rules. Errors come from :class:`TopClient` as connector errors; a request we know TOP
would refuse (a trade window over one day) is refused here before any call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta

from koudai_flask.connectors.taobao.client import TopClient, parse_time
from koudai_flask.connectors.taobao.oauth import OAuthToken, TaobaoOAuth, authorize_url
from koudai_flask.connectors.taobao.records import (
    Item,
    ItemPage,
    Sku,
    StockLevel,
    TmcMessage,
    Trade,
    TradePage,
    listed,
)

ONSALE_FIELDS = "num_iid,title,num,price,outer_id,pic_url,approve_status,modified"
ITEM_FIELDS = (
    "num_iid,title,desc,pic_url,item_img,num,price,outer_id,approve_status,modified,sku,"
    "cid,props,props_name"
)
SKU_FIELDS = "sku_id,num_iid,quantity,outer_id,properties,properties_name,price,modified"
# §1.6: item.skus.get takes at most 40 num_iids; items.onsale.get pages hold at most 200.
MAX_SKUS_NUM_IIDS = 40
MAX_ONSALE_PAGE = 200
TRADE_FIELDS = (
    "tid,status,payment,total_fee,post_fee,buyer_nick,buyer_open_uid,created,modified,"
    "pay_time,orders,seller_memo,seller_flag,buyer_message"
)
# §1.6: the increment window may span at most one day (30 minutes recommended).
MAX_INCREMENT_WINDOW = timedelta(days=1)
FULL, DELTA = 1, 2  # taobao.item.quantity.update "type": 1 absolute, 2 incremental
# taobao.trade.memo.update "flag": 0 grey (none), 1 red, 2 yellow, 3 green, 4 blue, 5 purple.
MEMO_FLAGS = range(6)


def _check_type(type: int) -> None:
    if type not in (FULL, DELTA):
        raise ValueError("quantity update type is 1 (full) or 2 (delta)")


class TaobaoAdapter:
    """The TOP calls of one linked shop (a backend): ``TaobaoAdapter(TopClient(...))``."""

    def __init__(self, client: TopClient) -> None:
        self.client = client

    # -- items -----------------------------------------------------------------------------

    def items_onsale(
        self,
        page_no: int = 1,
        page_size: int = 40,
        fields: str = ONSALE_FIELDS,
        *,
        start_modified: datetime | None = None,
        end_modified: datetime | None = None,
    ) -> ItemPage:
        """One page of the seller's on-sale items (``taobao.items.onsale.get``, size ≤ 200),
        optionally only those modified in ``[start_modified, end_modified]``."""
        if not 1 <= page_size <= MAX_ONSALE_PAGE:
            raise ValueError("items.onsale.get page_size is 1..200")
        if page_no < 1:
            raise ValueError("items.onsale.get page_no starts at 1")
        if start_modified and end_modified and end_modified < start_modified:
            raise ValueError("end_modified is before start_modified")
        answer = self.client.call(
            "taobao.items.onsale.get",
            fields=fields,
            page_no=page_no,
            page_size=page_size,
            start_modified=start_modified,
            end_modified=end_modified,
        )
        items = tuple(Item.from_top(row) for row in listed(answer.get("items"), "item"))
        return ItemPage(items=items, total_results=int(answer.get("total_results") or 0))

    def all_onsale(
        self,
        fields: str = ONSALE_FIELDS,
        *,
        page_size: int = MAX_ONSALE_PAGE,
        start_modified: datetime | None = None,
        end_modified: datetime | None = None,
    ) -> Iterator[Item]:
        """Every on-sale item (in the modified window), page after page, one call a page.

        Stops at the first short page or once ``total_results`` items were seen.
        """
        page_no, seen = 1, 0
        while True:
            page = self.items_onsale(
                page_no,
                page_size,
                fields,
                start_modified=start_modified,
                end_modified=end_modified,
            )
            yield from page.items
            seen += len(page.items)
            if len(page.items) < page_size or seen >= page.total_results:
                return
            page_no += 1

    def skus_of(self, num_iids: Iterable[int], fields: str = SKU_FIELDS) -> list[Sku]:
        """The SKUs of many items (``taobao.item.skus.get``), 40 items a call.

        Items without SKUs (or no longer the seller's) add nothing; repeated ids are asked
        once. Each SKU carries its ``num_iid``.
        """
        wanted = list(dict.fromkeys(int(num_iid) for num_iid in num_iids))
        skus: list[Sku] = []
        for start in range(0, len(wanted), MAX_SKUS_NUM_IIDS):
            chunk = wanted[start : start + MAX_SKUS_NUM_IIDS]
            answer = self.client.call("taobao.item.skus.get", fields=fields, num_iids=chunk)
            skus.extend(Sku.from_top(row) for row in listed(answer.get("skus"), "sku"))
        return skus

    def item(self, num_iid: int, fields: str = ITEM_FIELDS) -> Item:
        """One item with its SKUs and images (``taobao.item.seller.get``)."""
        answer = self.client.call("taobao.item.seller.get", fields=fields, num_iid=num_iid)
        return Item.from_top(answer.get("item") or {})

    def update_item_quantity(
        self,
        num_iid: int,
        quantity: int,
        sku_id: int | None = None,
        outer_id: str | None = None,
        type: int = FULL,
    ) -> StockLevel:
        """Set (type 1) or shift (type 2) the stock of an item or one of its SKUs.

        ``taobao.item.quantity.update``: without ``sku_id``/``outer_id`` the whole item;
        TOP prefers ``sku_id`` when both are given (§1.6).
        """
        _check_type(type)
        if type == FULL and quantity < 0:
            raise ValueError("a full (type 1) quantity cannot be negative")
        answer = self.client.call(
            "taobao.item.quantity.update",
            num_iid=num_iid,
            quantity=quantity,
            sku_id=sku_id,
            outer_id=outer_id,
            type=type,
        )
        return StockLevel.from_top(answer.get("item") or {})

    def update_skus_quantity(
        self, num_iid: int, quantities: Mapping[int, int], type: int = FULL
    ) -> StockLevel:
        """Several SKUs of one item at once (``taobao.skus.quantity.update``)."""
        _check_type(type)
        if not quantities:
            raise ValueError("no SKU quantities to update")
        # §1.6: skuid_quantities is "sku_id:qty;sku_id:qty".
        pairs = ";".join(f"{sku_id}:{qty}" for sku_id, qty in quantities.items())
        answer = self.client.call(
            "taobao.skus.quantity.update", num_iid=num_iid, skuid_quantities=pairs, type=type
        )
        return StockLevel.from_top(answer.get("item") or {})

    # -- trades ----------------------------------------------------------------------------

    def trades_increment(
        self,
        start_modified: datetime,
        end_modified: datetime,
        page_no: int = 1,
        page_size: int = 100,
        use_has_next: bool = True,
        fields: str = TRADE_FIELDS,
    ) -> TradePage:
        """Trades modified in a window (``taobao.trades.sold.increment.get``).

        The window may span at most one day, so a longer one is refused here rather than by
        TOP. With ``use_has_next`` TOP answers ``has_next`` instead of a total, the paging
        §1.6 recommends (otherwise page backwards, last page first).
        """
        if end_modified < start_modified:
            raise ValueError("end_modified is before start_modified")
        if end_modified - start_modified > MAX_INCREMENT_WINDOW:
            raise ValueError("a TOP increment window spans at most one day; split it")
        if not 1 <= page_size <= 100:
            raise ValueError("trades.sold.increment.get page_size is 1..100")
        answer = self.client.call(
            "taobao.trades.sold.increment.get",
            fields=fields,
            start_modified=start_modified,
            end_modified=end_modified,
            page_no=page_no,
            page_size=page_size,
            use_has_next=use_has_next,
        )
        trades = tuple(Trade.from_top(row) for row in listed(answer.get("trades"), "trade"))
        total = answer.get("total_results")
        return TradePage(
            trades=trades,
            has_next=bool(answer.get("has_next", False)),
            total_results=int(total) if total is not None else None,
        )

    def trade(self, tid: int, fields: str = TRADE_FIELDS) -> Trade:
        """One trade with its lines (``taobao.trade.fullinfo.get``)."""
        answer = self.client.call("taobao.trade.fullinfo.get", fields=fields, tid=tid)
        return Trade.from_top(answer.get("trade") or {})

    def offline_send(self, tid: int, out_sid: str, company_code: str) -> bool:
        """Mark a trade shipped with our own carrier (``taobao.logistics.offline.send``).

        ``company_code`` is TOP's code (``carriers.top_code("yuantong")`` → ``"YTO"``), not
        Kuaidi100's (§1.6).
        """
        answer = self.client.call(
            "taobao.logistics.offline.send", tid=tid, out_sid=out_sid, company_code=company_code
        )
        shipping = answer.get("shipping") or {}
        return bool(shipping.get("is_success"))

    def update_memo(self, tid: int, memo: str, flag: int) -> datetime | None:
        """Set the seller's memo and flag of a trade (``taobao.trade.memo.update``); returns
        the trade's new ``modified``.

        TOP ignores an empty ``memo`` unless ``reset=true``, which clears the memo whatever
        ``memo`` says (the method's documented semantics), so an empty memo is sent as
        ``reset=true`` and a non-empty one as itself.
        """
        if flag not in MEMO_FLAGS:
            raise ValueError("a trade memo flag is 0..5")
        answer = self.client.call(
            "taobao.trade.memo.update",
            tid=tid,
            flag=flag,
            memo=memo or None,
            reset=True if not memo else None,
        )
        modified = (answer.get("trade") or {}).get("modified")
        return parse_time(str(modified)) if modified else None

    # -- TMC (§1.8, HTTP pull) -------------------------------------------------------------

    def tmc_consume(self, group_name: str = "default", quantity: int = 100) -> list[TmcMessage]:
        """Pull up to ``quantity`` (10–200) messages; confirm each once it is applied.

        An unconfirmed message comes back after TMC's visibility timeout, so applying one
        must be idempotent.
        """
        if not 10 <= quantity <= 200:
            raise ValueError("tmc.messages.consume quantity is 10..200")
        answer = self.client.call(
            "taobao.tmc.messages.consume", group_name=group_name, quantity=quantity
        )
        return [TmcMessage.from_top(row) for row in listed(answer.get("messages"), "tmc_message")]

    def tmc_confirm(self, s_message_ids: Iterable[int], group_name: str = "default") -> bool:
        """Confirm applied messages (``taobao.tmc.messages.confirm``, ≤ 200 ids a call)."""
        ids = [str(message_id) for message_id in s_message_ids]
        if not ids:
            return True
        if len(ids) > 200:
            raise ValueError("tmc.messages.confirm takes at most 200 ids")
        answer = self.client.call(
            "taobao.tmc.messages.confirm", group_name=group_name, s_message_ids=",".join(ids)
        )
        return bool(answer.get("is_success"))


__all__ = [
    "DELTA",
    "FULL",
    "ITEM_FIELDS",
    "MAX_SKUS_NUM_IIDS",
    "MEMO_FLAGS",
    "ONSALE_FIELDS",
    "SKU_FIELDS",
    "OAuthToken",
    "TaobaoAdapter",
    "TaobaoOAuth",
    "authorize_url",
]
