"""A generated seller catalogue for imports and reconciles, and the seller's item edits.

``seed_catalog`` builds N items with colour × size SKUs, TOP-style ``properties_name``,
prices, pictures served by the sandbox, and merchant codes (outer ids) on every other item
only, the mix a real shop has. The same seed gives the same catalogue, ids included.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from koudai_flask.connectors.sandbox.taobao.shop import add_item, check_price, find_item
from koudai_flask.connectors.sandbox.taobao.state import SandboxItem, TopState
from koudai_flask.connectors.taobao.client import format_time, parse_time

# Taobao's sale properties: 1627207 颜色分类 (colour), 20509 尺码 (size), with common value
# ids; 20000 is the brand property. The sandbox does not check them against a category.
COLOUR_PID, SIZE_PID, BRAND_PID = 1627207, 20509, 20000
COLOURS = (
    (28320, "白色", "WH"),
    (28341, "黑色", "BK"),
    (28326, "红色", "RD"),
    (28338, "蓝色", "BL"),
    (28335, "绿色", "GN"),
    (28324, "黄色", "YL"),
)
SIZES = ((28313, "XS"), (28314, "S"), (28315, "M"), (28316, "L"), (28317, "XL"), (28318, "XXL"))
BRAND = (3275069, "口袋小铺")
PRODUCTS = (
    (50000436, "T恤", "T-shirt"),
    (162104, "衬衫", "Shirt"),
    (50010850, "连衣裙", "Dress"),
    (50000671, "卫衣", "Hoodie"),
    (50011277, "休闲裤", "Trousers"),
    (50010158, "针织衫", "Knit top"),
)
STYLES = (
    ("纯棉", "Cotton"),
    ("宽松", "Loose"),
    ("修身", "Slim"),
    ("复古", "Vintage"),
    ("简约", "Plain"),
    ("条纹", "Striped"),
    ("印花", "Printed"),
    ("加厚", "Warm"),
)
MAX_ITEMS = 100_000
FIRST_NUM_IID = 100_000_000_000  # + seed × 1,000,000 + n: apart from add_item's own ids


def seed_catalog(
    state: TopState,
    items: int = 200,
    skus_per_item: int = 3,
    *,
    seed: int = 0,
    pictures: int = 2,
    modified: datetime | None = None,
) -> list[SandboxItem]:
    """Add ``items`` on-sale items, each with ``skus_per_item`` colour × size SKUs (0: none).

    Item n (from 1) is ``num_iid`` 100,000,000,000 + seed × 1,000,000 + n, its SKUs
    ``num_iid × 100 + k``. Odd items carry outer ids (on the item and every SKU), even
    ones none. Nothing is published: this is the catalogue the seller had before linking.
    """
    if not 0 <= items <= MAX_ITEMS:
        raise ValueError(f"seed_catalog makes 0..{MAX_ITEMS} items")
    if not 0 <= skus_per_item <= len(COLOURS) * len(SIZES):
        raise ValueError(f"skus_per_item is 0..{len(COLOURS) * len(SIZES)} (colour × size)")
    if not 0 <= seed < 100_000 or pictures < 0:
        raise ValueError("seed is 0..99999 and pictures cannot be negative")
    rng = random.Random(seed)
    stamp = format_time(modified or datetime.now(UTC))
    combos = [(colour, size) for colour in COLOURS for size in SIZES]
    first = FIRST_NUM_IID + seed * 1_000_000
    with state.lock:
        taken = [n for n in range(first + 1, first + items + 1) if n in state.items]
        if taken:
            raise ValueError(f"seed {seed} was already used: item {taken[0]} exists")
        made = []
        for n in range(1, items + 1):
            num_iid = first + n
            cid, noun, noun_en = rng.choice(PRODUCTS)
            style, style_en = rng.choice(STYLES)
            title = f"{style}{noun} {style_en} {noun_en} {n:05d}"
            base = rng.randrange(19, 400)
            step = rng.choice((0, 0, 5, 10))
            outer = f"KD{seed}-{n:05d}" if n % 2 else ""
            chosen = sorted(rng.sample(combos, skus_per_item), key=combos.index)
            skus = []
            for k, ((cvid, colour, code), (svid, size)) in enumerate(chosen, start=1):
                skus.append(
                    {
                        "sku_id": num_iid * 100 + k,
                        "properties": f"{COLOUR_PID}:{cvid};{SIZE_PID}:{svid}",
                        "properties_name": (
                            f"{COLOUR_PID}:{cvid}:颜色分类:{colour};{SIZE_PID}:{svid}:尺码:{size}"
                        ),
                        "quantity": _quantity(rng),
                        "price": f"{base + step * [s[1] for s in SIZES].index(size)}.00",
                        "outer_id": f"{outer}-{code}-{size}" if outer else "",
                    }
                )
            values = {(COLOUR_PID, c[0], "颜色分类", c[1]) for c, _ in chosen} | {
                (SIZE_PID, s[0], "尺码", s[1]) for _, s in chosen
            }
            props = [(BRAND_PID, BRAND[0], "品牌", BRAND[1]), *sorted(values)]
            made.append(
                add_item(
                    state,
                    title,
                    f"{base}.00",
                    0 if skus else _quantity(rng),
                    outer_id=outer,
                    skus=skus,
                    num_iid=num_iid,
                    desc=f"<p>{title}</p><p>{style}{noun}, 品牌 {BRAND[1]}</p>",
                    pictures=pictures,
                    cid=cid,
                    props=";".join(f"{pid}:{vid}" for pid, vid, _, _ in props),
                    props_name=";".join(f"{p}:{v}:{name}:{value}" for p, v, name, value in props),
                    modified=stamp,
                )
            )
        return made


def _quantity(rng: random.Random) -> int:
    # About one SKU in ten is sold out, as in a real shop.
    return 0 if rng.random() < 0.1 else rng.randrange(1, 60)


def edit_item(
    state: TopState,
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
    """The seller edits an item in the Taobao back office; ``modified`` moves forward.

    Without ``modified`` the new time is now, and at least one second after the old one
    (TOP times have whole seconds), so a "modified since" reader always sees the edit.
    ``pictures`` replaces the pictures with that many new ones (new URLs). All values are
    checked before anything changes. Stock is changed with ``set_quantity``, not here.
    """
    with state.lock:
        item = find_item(state, num_iid)
        new_price = check_price(price) if price is not None else None
        if approve_status not in (None, "onsale", "instock"):
            raise ValueError("approve_status is 'onsale' or 'instock'")
        if title is not None and not title.strip():
            raise ValueError("an item title cannot be empty")
        if pictures is not None and pictures < 0:
            raise ValueError("pictures cannot be negative")
        touched = set(sku_prices or {}) | set(sku_outer_ids or {})
        unknown = sorted(touched - set(item.skus))
        if unknown:
            raise ValueError(f"SKU {unknown[0]} is not a SKU of item {num_iid}")
        checked = {sku_id: check_price(text) for sku_id, text in (sku_prices or {}).items()}
        if modified is not None:
            stamp = format_time(modified)
        else:
            stamp = format_time(
                max(datetime.now(UTC), parse_time(item.modified) + timedelta(seconds=1))
            )
        item.title = title if title is not None else item.title
        item.price = new_price or item.price
        item.desc = desc if desc is not None else item.desc
        item.outer_id = outer_id if outer_id is not None else item.outer_id
        item.approve_status = approve_status or item.approve_status
        for sku_id in touched:
            sku = item.skus[sku_id]
            sku.price = checked.get(sku_id, sku.price)
            sku.outer_id = (sku_outer_ids or {}).get(sku_id, sku.outer_id)
            sku.modified = stamp
        if pictures is not None:
            edition = state.next_id(0)
            item.item_imgs = [
                state.add_image(f"{num_iid}-e{edition}-{n}") for n in range(1, pictures + 1)
            ]
            item.pic_url = item.item_imgs[0] if item.item_imgs else ""
        item.modified = stamp
        return item
