"""Catalog import (商品上架): a linked shop's items become our products, bound to theirs.

The importer of catalogue data in the connector vocabulary (``connectors.base``): it applies
plain records the job has already fetched (no network here), one transaction per item, and
decides per item:

- **bound already** — some binding (``ChannelListing``) of this channel points at the item:
  that product is the match. Following the OCA rule, an item not modified since the oldest
  binding's ``remote_modified`` is stale and skipped; a newer one updates the title, the
  description and the prices, and adds the SKUs that are new on the channel. Our stock of
  existing SKUs is never touched.
- **known by code** — a SKU's merchant code (Taobao ``outer_id``), or the code an earlier
  import generated for it, is one of our SKU codes: that SKU is bound, no product is made.
- **new** — a product with the item's options (the attribute names), its SKUs, prices and
  pictures; each SKU is coded by its ``outer_id`` when that is a free, valid code, else by
  the stable ``TB<num_iid>-<sku_id>``.

Stock: a SKU the import creates starts with the channel's quantity as our on-hand (a
``count`` movement, source ``import:<channel>``), since the seller's stock lived there until
now. It is set before the binding exists, and the binding starts out in sync (last seen and
last pushed = that quantity, which is what share 1 and buffer 0 give), so importing a shop
pushes nothing back to it. A SKU of ours that is bound keeps our stock; when the channel
shows another figure its listing is marked for a push, which the periodic sync sweeps.

Every decision is read from the database inside the item's transaction and every key is
stable, so a run stopped halfway and run again creates nothing twice.

The records the job hands over, and their checks, are
:mod:`koudai_flask.services.catalog_import_records`; its names are importable from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from koudai_flask.models import Channel, ChannelListing, Product, Sku
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, channels, inventory, stock_sync
from koudai_flask.services.catalog_admin import store_product_image
from koudai_flask.services.catalog_import_records import (
    BOUND,
    CREATED,
    MAX_PICTURES,
    OUTCOMES,
    UNCHANGED,
    UPDATED,
    ImportedItem,
    ImportedSku,
    ImportResult,
    check_item,
    checked_pictures,
)
from koudai_flask.services.transaction import current_session, unit_of_work

# Our SKU codes (schemas.catalog.CODE); a merchant code that does not fit is not used.
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_QUERY_CHUNK = 500


def generated_code(num_iid: int, sku_id: int | None) -> str:
    """The stable code of a SKU without a usable merchant code: ``TB<num_iid>-<sku_id>``."""
    return f"TB{num_iid}" if sku_id is None else f"TB{num_iid}-{sku_id}"


def is_due(modified: datetime | None, synced: datetime | None) -> bool:
    """The OCA rule: import only a record modified after its binding's last sync."""
    return modified is None or synced is None or modified > synced


def synced_items(channel_name: str, num_iids: Iterable[int]) -> dict[int, datetime | None]:
    """The items of ``num_iids`` bound on the channel, with their oldest binding's sync time
    (None when one was never synced); a job skips fetching the others' details with it."""
    session = current_session()
    try:
        channel = channels.get(channel_name)
        wanted = [str(n) for n in dict.fromkeys(num_iids)]
        found: dict[int, datetime | None] = {}
        for start in range(0, len(wanted), _QUERY_CHUNK):
            chunk = wanted[start : start + _QUERY_CHUNK]
            rows = session.execute(
                select(
                    ChannelListing.external_item_id,
                    func.min(ChannelListing.remote_modified),
                    func.count(ChannelListing.remote_modified),
                    func.count(),
                )
                .where(
                    ChannelListing.channel_id == channel.id,
                    ChannelListing.external_item_id.in_(chunk),
                )
                .group_by(ChannelListing.external_item_id)
            )
            for item_id, oldest, with_time, bindings in rows:
                # min() skips NULLs: one binding never synced makes the whole item due.
                found[int(item_id)] = oldest if with_time == bindings else None
        return found
    finally:
        session.rollback()


def import_item(channel_name: str, item: ImportedItem) -> ImportResult:
    """Apply one channel item (see the module docstring); one transaction, idempotent."""
    check_item(item)
    pictures = checked_pictures(item)
    with unit_of_work() as session:
        channel = channels.get(channel_name)
        listings = list(
            session.scalars(
                select(ChannelListing)
                .where(
                    ChannelListing.channel_id == channel.id,
                    ChannelListing.external_item_id == str(item.num_iid),
                )
                .order_by(ChannelListing.id)
            )
        )
        if listings:
            return _update(session, channel, item, listings)
        ours = _ours_by_code(session, channel, item.num_iid, item.skus)
        if ours:
            return _bind(session, channel, item, ours)
        return _create(session, channel, item, pictures)


# -- matching --------------------------------------------------------------------------------


def _candidate_codes(num_iid: int, sku: ImportedSku) -> list[str]:
    codes = [sku.outer_id] if _CODE.match(sku.outer_id) else []
    return [*codes, generated_code(num_iid, sku.sku_id)]


def _ours_by_code(
    session: Session, channel: Channel, num_iid: int, skus: Sequence[ImportedSku]
) -> dict[int | None, Sku]:
    """Our SKUs whose code is a channel SKU's merchant or generated code, each used once.

    A SKU of ours already bound to another item of this channel is not taken: the channel
    has two items with one merchant code, and the second gets a product of its own.
    """
    wanted = {code for sku in skus for code in _candidate_codes(num_iid, sku)}
    bound_here = select(ChannelListing.sku_id).where(ChannelListing.channel_id == channel.id)
    by_code = {
        sku.code: sku
        for sku in session.scalars(
            select(Sku).where(Sku.code.in_(sorted(wanted)), Sku.id.not_in(bound_here))
        )
    }
    matched: dict[int | None, Sku] = {}
    used: set[int] = set()
    for remote in skus:
        for code in _candidate_codes(num_iid, remote):
            ours = by_code.get(code)
            if ours is not None and ours.id not in used:
                matched[remote.sku_id] = ours
                used.add(ours.id)
                break
    return matched


def _codes_in_use(session: Session, num_iid: int, skus: Sequence[ImportedSku]) -> set[str]:
    """Which of the SKUs' candidate codes are ours already (one query for an item)."""
    wanted = sorted({code for sku in skus for code in _candidate_codes(num_iid, sku)})
    return set(session.scalars(select(Sku.code).where(Sku.code.in_(wanted))))


def _free_code(session: Session, num_iid: int, sku: ImportedSku, taken: set[str]) -> str:
    """The merchant code when it is a valid code nobody uses, else the generated one.

    ``taken`` holds the candidate codes in use (``_codes_in_use``) and those this item gave
    out already; a generated code in use gets a ``-2``, ``-3``... suffix.
    """
    for code in _candidate_codes(num_iid, sku):
        if code not in taken:
            taken.add(code)
            return code
    base, n = generated_code(num_iid, sku.sku_id), 2
    while f"{base}-{n}" in taken or session.scalar(select(Sku.id).where(Sku.code == f"{base}-{n}")):
        n += 1
    taken.add(f"{base}-{n}")
    return f"{base}-{n}"


# -- the three outcomes ----------------------------------------------------------------------


def _options(skus: Sequence[ImportedSku]) -> list[str]:
    return list(dict.fromkeys(name for sku in skus for name, _ in sku.attributes))


def _attributes(sku: ImportedSku, options: Sequence[str]) -> dict[str, str]:
    values = dict(sku.attributes)
    return {name: values.get(name, "") for name in options} | values


def _bind_new(
    channel: Channel, item: ImportedItem, remote: ImportedSku, code: str, *, fresh: bool
) -> ChannelListing:
    """Bind our SKU ``code`` to the channel SKU with the import's rule (share 1, buffer 0).

    A ``fresh`` SKU (made by this import, with the channel's quantity as on-hand) starts in
    sync; an older one keeps our stock and is marked for a push when the channel differs.
    """
    listing = channels.link(
        channel.name,
        code,
        external_item_id=str(item.num_iid),
        external_sku_id="" if remote.sku_id is None else str(remote.sku_id),
        share=1,
        buffer=0,
    )
    listing.last_seen_quantity = remote.quantity
    listing.remote_modified = item.modified or utcnow()
    if fresh or remote.quantity == inventory.allocation(
        inventory.available(code), share=listing.share, buffer=listing.buffer, cap=listing.cap
    ):
        listing.last_pushed_quantity = remote.quantity
    else:
        stock_sync.mark_channel_dirty(channel.name, [code])
    return listing


def _add_sku(
    session: Session,
    channel: Channel,
    product: Product,
    item: ImportedItem,
    remote: ImportedSku,
    taken: set[str],
) -> str:
    taken |= _codes_in_use(session, item.num_iid, [remote])
    code = _free_code(session, item.num_iid, remote, taken)
    catalog.add_sku(
        product.id,
        {
            "code": code,
            "price": remote.price_fen,
            "attributes": _attributes(remote, product.options),
        },
        source=f"import:{channel.name}",
    )
    _open_stock(channel, code, remote.quantity)
    _bind_new(channel, item, remote, code, fresh=True)
    return code


def _open_stock(channel: Channel, code: str, quantity: int) -> None:
    if quantity:
        inventory.set_on_hand(code, quantity, source=f"import:{channel.name}")


def _create(
    session: Session, channel: Channel, item: ImportedItem, pictures: list[tuple[bytes, str]]
) -> ImportResult:
    options = _options(item.skus)
    taken = _codes_in_use(session, item.num_iid, item.skus)
    codes = [_free_code(session, item.num_iid, remote, taken) for remote in item.skus]
    product = catalog.create_product(
        title=item.title,
        description=item.desc,
        options=options,
        source=f"import:{channel.name}",
        skus=[
            {"code": code, "price": remote.price_fen, "attributes": _attributes(remote, options)}
            for code, remote in zip(codes, item.skus, strict=True)
        ],
    )
    for data, extension in pictures:
        store_product_image(session, product, data, extension)
    for code, remote in zip(codes, item.skus, strict=True):
        _open_stock(channel, code, remote.quantity)
        _bind_new(channel, item, remote, code, fresh=True)
    return ImportResult(CREATED, product.id, tuple(codes))


def _bind(
    session: Session, channel: Channel, item: ImportedItem, ours: dict[int | None, Sku]
) -> ImportResult:
    """Bind the SKUs we know by code; the item's other SKUs join the first one's product."""
    codes = []
    product = next(iter(ours.values())).product
    taken: set[str] = set()
    for remote in item.skus:
        sku = ours.get(remote.sku_id)
        if sku is not None:
            _bind_new(channel, item, remote, sku.code, fresh=False)
            codes.append(sku.code)
        else:
            codes.append(_add_sku(session, channel, product, item, remote, taken))
    return ImportResult(BOUND, product.id, tuple(codes))


def _update(
    session: Session, channel: Channel, item: ImportedItem, listings: list[ChannelListing]
) -> ImportResult:
    synced = [listing.remote_modified for listing in listings]
    oldest = None if None in synced else min(s for s in synced if s is not None)
    first = session.get(Sku, listings[0].sku_id)
    assert first is not None  # a binding's SKU is never deleted
    product = first.product
    if not is_due(item.modified, oldest):
        return ImportResult(UNCHANGED, product.id)
    changed = False
    if product.title != item.title or product.description != item.desc:
        catalog.update_product(product.id, title=item.title, description=item.desc)
        changed = True
    by_remote = {listing.external_sku_id: listing for listing in listings}
    taken: set[str] = set()
    codes = []
    for remote in item.skus:
        listing = by_remote.get("" if remote.sku_id is None else str(remote.sku_id))
        if listing is None:
            # A SKU added on the channel since: ours by code, else new on the product.
            known = _ours_by_code(session, channel, item.num_iid, [remote])
            if known:
                _bind_new(channel, item, remote, known[remote.sku_id].code, fresh=False)
                codes.append(known[remote.sku_id].code)
            else:
                codes.append(_add_sku(session, channel, product, item, remote, taken))
            changed = True
            continue
        sku = session.get(Sku, listing.sku_id)
        assert sku is not None
        codes.append(sku.code)
        if sku.price != remote.price_fen:
            catalog.update_sku(sku.code, price=remote.price_fen)
            changed = True
    moment = item.modified or utcnow()
    for listing in listings:
        # A binding write; a push may have stamped a later time already: never go back.
        if listing.remote_modified is None or listing.remote_modified < moment:
            listing.remote_modified = moment
    session.flush()
    return ImportResult(UPDATED if changed else UNCHANGED, product.id, tuple(codes))


__all__ = [
    "BOUND",
    "CREATED",
    "MAX_PICTURES",
    "OUTCOMES",
    "UNCHANGED",
    "UPDATED",
    "ImportResult",
    "ImportedItem",
    "ImportedSku",
    "generated_code",
    "import_item",
    "is_due",
    "synced_items",
]
