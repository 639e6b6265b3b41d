"""Orders as CSV for staff: a streamed export and bulk shipping from an upload."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlalchemy.orm import selectinload

from koudai_flask.config import config_value
from koudai_flask.connectors.logistics.carriers import resolve_carrier
from koudai_flask.errors import KoudaiError
from koudai_flask.models import Order
from koudai_flask.services import backoffice, order_search, staff
from koudai_flask.services.customer_csv import text_cell
from koudai_flask.services.product_form import fen_to_yuan
from koudai_flask.services.transaction import current_session

# -- CSV -------------------------------------------------------------------------------------

EXPORT_COLUMNS = [
    "number",
    "channel",
    "external_id",
    "status",
    "created_at",
    "paid_at",
    "total_yuan",
    "shipping_fee_yuan",
    "buyer",
    "phone",
    "address",
    "skus",
    "tracking",
    "seller_flag",
    "seller_memo",
]


def export_orders(
    user_id: str, filters: order_search.OrderFilters, *, batch: int = 500
) -> Iterator[str]:
    """CSV text of the matching orders, produced batch by batch (bounded memory)."""
    member = staff.require(user_id, "orders.export")
    session = current_session()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    yield "\ufeff" + out.getvalue()  # a BOM, so spreadsheet programs read UTF-8 Chinese
    zone = ZoneInfo(config_value("TIMEZONE"))
    last: tuple[datetime, int] | None = None
    base = order_search.order_query(member, filters)
    while True:
        query = base
        if last is not None:  # keyset pagination: stable and cheap on big tables
            query = query.where(
                or_(
                    Order.created_at < last[0], (Order.created_at == last[0]) & (Order.id < last[1])
                )
            )
        rows = session.scalars(
            query.limit(batch).options(selectinload(Order.lines), selectinload(Order.shipments))
        ).all()
        if not rows:
            break
        out.seek(0)
        out.truncate()
        for order in rows:
            address = order.address or {}
            writer.writerow(
                [
                    order.number,
                    order.channel,
                    text_cell(order.external_id or ""),
                    order.status,
                    order.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                    order.paid_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
                    if order.paid_at
                    else "",
                    fen_to_yuan(order.total),
                    fen_to_yuan(order.shipping_fee),
                    text_cell(address.get("name", "")),
                    text_cell(address.get("phone", "")),
                    text_cell(
                        "".join(
                            address.get(k, "") for k in ("province", "city", "district", "street")
                        )
                    ),
                    " ".join(f"{line.sku_code}x{line.quantity}" for line in order.lines),
                    " ".join(f"{s.carrier}:{s.tracking_number}" for s in order.shipments),
                    order.seller_memo.flag if order.seller_memo else 0,
                    text_cell(order.seller_memo.memo) if order.seller_memo else "",
                ]
            )
        yield out.getvalue()
        last = (rows[-1].created_at, rows[-1].id)
        session.expunge_all()


@dataclass(frozen=True)
class RowResult:
    """One row's outcome. ``message`` says it in English (logs, tests); a page says it in
    its reader's language from ``outcome`` (``shipped``, ``duplicate``, ``incomplete``,
    ``too_many_rows``, ``refused``), ``refusal`` (the service's error) and the parcel."""

    row: int
    number: str
    ok: bool
    message: str
    outcome: str = "refused"
    refusal: KoudaiError | None = None
    carrier: str = ""
    tracking: str = ""


# First cells of a header row, as exported by us or written in a Chinese spreadsheet.
HEADER_WORDS = frozenset({"number", "order", "order number", "订单号", "订单编号"})


def ship_from_csv(user_id: str, text: str, *, max_rows: int = 5000) -> list[RowResult]:
    """Ship orders from CSV rows ``number,carrier,tracking_number``: each row on its own.

    The carrier may be written as our code, its Taobao code or its name (顺丰, 圆通速递, SF
    Express: ``carriers.resolve_carrier``). A good row is applied in its own transaction; a
    bad one is reported with the reason and changes nothing; a row repeating an applied
    shipment is reported as a duplicate.
    """
    staff.require(user_id, "orders.ship")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    results: list[RowResult] = []
    seen: set[tuple[str, str]] = set()
    for index, row in enumerate(reader, start=1):
        if index > max_rows:
            results.append(
                RowResult(index, "", False, f"more than {max_rows} rows; split it", "too_many_rows")
            )
            break
        cells = [cell.strip() for cell in row]
        if not any(cells) or (index == 1 and cells[0].casefold() in HEADER_WORDS):
            continue
        if len(cells) < 3 or not all(cells[:3]):
            results.append(
                RowResult(
                    index,
                    cells[0] if cells else "",
                    False,
                    "needs number, carrier and tracking_number",
                    "incomplete",
                )
            )
            continue
        number, named, tracking = cells[:3]
        try:
            carrier = resolve_carrier(named)
        except KoudaiError as exc:
            results.append(RowResult(index, number, False, exc.message, refusal=exc))
            continue
        if (carrier, tracking) in seen:
            results.append(RowResult(index, number, False, "duplicate row", "duplicate"))
            continue
        seen.add((carrier, tracking))
        try:
            backoffice.ship(user_id, number, carrier=carrier, tracking_number=tracking)
        except KoudaiError as exc:
            results.append(RowResult(index, number, False, exc.message, refusal=exc))
        else:
            results.append(
                RowResult(
                    index,
                    number,
                    True,
                    f"shipped with {carrier} {tracking}",
                    "shipped",
                    carrier=carrier,
                    tracking=tracking,
                )
            )
    return results
