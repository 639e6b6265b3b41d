"""The sandbox seller's items and their stock, changed the way Taobao changes them.

These functions back both the TOP methods (``methods.py``) and the helpers of
:class:`TaobaoSandbox`; every quantity change publishes ``taobao_item_ItemStockChanged``
(§1.8), whoever made it. Trades are in ``trades.py``; the generated catalogue in
``catalog.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from koudai_flask.connectors.sandbox.taobao.state import (
    SELLER_NICK,
    SandboxItem,
    SandboxSku,
    TopState,
    invalid,
    now_text,
)
from koudai_flask.connectors.taobao.records import property_pairs


def check_price(price: str) -> str:
    """A TOP price: yuan with at most two decimals, as text ("129.00")."""
    try:
        value = Decimal(price)
    except (InvalidOperation, TypeError):
        raise ValueError(f"price {price!r} is not an amount in yuan like '129.00'") from None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise ValueError(f"price {price!r} is not an amount in yuan like '129.00'")
    return f"{value:.2f}"


def display_properties(properties_name: str) -> str:
    """TOP's ``sku_properties_name`` of a trade line: "颜色分类:红色;尺码:S"."""
    return ";".join(f"{name}:{value}" for name, value in property_pairs(properties_name))


def add_item(
    state: TopState,
    title: str,
    price: str,
    num: int = 0,
    *,
    outer_id: str = "",
    skus: Iterable[dict[str, Any]] = (),
    num_iid: int | None = None,
    desc: str = "",
    pic_url: str = "",
    pictures: int = 1,
    cid: int | None = None,
    props: str = "",
    props_name: str = "",
    modified: str = "",
) -> SandboxItem:
    """A new on-sale item; each SKU dict has ``properties_name``, ``quantity`` and optionally
    ``price``, ``outer_id``, ``properties``, ``sku_id``.

    Without ``pic_url`` the item gets ``pictures`` generated pictures served by the sandbox
    itself (``/img/<num_iid>-<n>.png``). Adding an item publishes nothing: it stands for the
    catalogue the seller had before linking the shop.
    """
    price = check_price(price)
    specs = list(skus)
    if num < 0 or pictures < 0 or any(int(spec.get("quantity", 0)) < 0 for spec in specs):
        raise ValueError("stock quantities and the number of pictures cannot be negative")
    with state.lock:
        if num_iid is not None and num_iid in state.items:
            raise ValueError(f"item {num_iid} already exists")
        item = SandboxItem(
            num_iid=num_iid or state.next_id(600000000000),
            title=title,
            price=price,
            num=num,
            outer_id=outer_id,
            desc=desc or f"<p>{title}</p>",
            props=props,
            props_name=props_name,
        )
        if cid is not None:
            item.cid = cid
        if modified:
            item.modified = modified
        if pic_url:
            item.item_imgs = [pic_url]
        else:
            item.item_imgs = [
                state.add_image(f"{item.num_iid}-{n}") for n in range(1, pictures + 1)
            ]
        item.pic_url = item.item_imgs[0] if item.item_imgs else ""
        for position, spec in enumerate(specs):
            sku = SandboxSku(
                sku_id=int(spec.get("sku_id") or state.next_id(5000000000000)),
                properties=str(spec.get("properties") or f"1627207:{28320 + position}"),
                properties_name=str(spec.get("properties_name") or f"颜色:{position}"),
                quantity=int(spec.get("quantity", 0)),
                price=check_price(str(spec.get("price") or price)),
                outer_id=str(spec.get("outer_id") or ""),
                modified=modified or now_text(),
            )
            if sku.sku_id in state.sku_owner or sku.sku_id in item.skus:
                raise ValueError(f"SKU {sku.sku_id} already exists")
            item.skus[sku.sku_id] = sku
        item.recount()
        state.items[item.num_iid] = item
        state.sku_owner.update((sku_id, item.num_iid) for sku_id in item.skus)
        return item


def find_item(state: TopState, num_iid: int) -> SandboxItem:
    item = state.items.get(num_iid)
    if item is None:
        raise invalid(f"商品 {num_iid} 不存在", "isv.item-not-exist")
    return item


def find_sku(item: SandboxItem, sku_id: int | None, outer_id: str | None) -> SandboxSku | None:
    """The SKU a quantity update targets; ``sku_id`` wins over ``outer_id`` (§1.6)."""
    if sku_id is not None:
        sku = item.skus.get(sku_id)
        if sku is None:
            raise invalid(f"SKU {sku_id} 不属于商品 {item.num_iid}", "isv.item-sku-not-exist")
        return sku
    if outer_id:
        for sku in item.skus.values():
            if sku.outer_id == outer_id:
                return sku
        raise invalid(f"商家编码 {outer_id} 不存在", "isv.item-sku-not-exist")
    return None


def stock_changed_content(
    item: SandboxItem, sku: SandboxSku | None, increment: int
) -> dict[str, Any]:
    """The ``taobao_item_ItemStockChanged`` content (§1.8): the new stock and the change.

    ``num`` is the item's total after the change; for a SKU, ``sku_num`` is the SKU's.
    [U] ``changed_fields`` lists the content fields whose value changed.
    """
    content: dict[str, Any] = {"num_iid": item.num_iid, "nick": SELLER_NICK}
    if sku is not None:
        content["sku_id"] = sku.sku_id
        content["sku_num"] = sku.quantity
    content["num"] = item.num
    content["increment"] = increment
    content["changed_fields"] = "num,sku_num" if sku is not None else "num"
    return content


def check_quantity(item: SandboxItem, sku: SandboxSku | None, quantity: int, type: int) -> int:
    """The stock a type 1 (set) or type 2 (add) update would leave; refused below 0 (§1.6)."""
    if type not in (1, 2):
        raise invalid("type 只能是 1(全量) 或 2(增量)")
    if type == 1 and quantity < 0:
        raise invalid("全量更新时 quantity 必须大于等于 0")
    if sku is None and item.skus:
        raise invalid("该商品有 SKU, 请指定 sku_id", "isv.item-quantity-item-update-error")
    current = sku.quantity if sku is not None else item.num
    result = quantity if type == 1 else current + quantity
    if result < 0:
        raise invalid("库存不能小于 0", "isv.item-quantity-item-update-error")
    return result


def change_quantity(
    state: TopState, item: SandboxItem, sku: SandboxSku | None, quantity: int, type: int
) -> int:
    """Apply a type 1/2 update and publish ItemStockChanged; returns the increment.

    An update that leaves the stock as it was changes nothing and publishes nothing.
    """
    with state.lock:
        result = check_quantity(item, sku, quantity, type)
        current = sku.quantity if sku is not None else item.num
        if result == current:
            return 0
        stamp = now_text()
        if sku is not None:
            sku.quantity, sku.modified = result, stamp
            item.recount()
        else:
            item.num = result
        item.modified = stamp
        state.publish(
            "taobao_item_ItemStockChanged", stock_changed_content(item, sku, result - current)
        )
        return result - current


def set_quantity(state: TopState, num_iid: int, quantity: int, sku_id: int | None = None) -> int:
    """The seller sets stock in the Taobao back office (or on the sandbox's stock page)."""
    with state.lock:
        item = find_item(state, num_iid)
        return change_quantity(state, item, find_sku(item, sku_id, None), quantity, 1)


def quantity_of(state: TopState, num_iid: int, sku_id: int | None = None) -> int:
    with state.lock:
        item = state.items[num_iid]
        return item.skus[sku_id].quantity if sku_id is not None else item.num
