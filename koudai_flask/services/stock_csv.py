"""Stock as a spreadsheet (``stock.adjust``): the book exported, counts uploaded.

A warehouse that counts on paper or in its own spreadsheet downloads the stock of every
SKU at the default location, fills in the ``counted`` column for what it counted, and
uploads the file. Each filled row is a stocktake count (``stocktake.count``): the SKU's
on-hand figure becomes the count, written as a ``count`` movement and audited, or the row
is refused with the reason and changes nothing. The export's ``on_hand`` column comes
back as the figure the counter saw: a row whose book moved since the export is refused
(``count_moved``), unless the book now shows exactly the count (a file uploaded twice
changes nothing the second time).

A file of our own export is read by its header; a spreadsheet's own header may say it in
Chinese (``商品编码``, ``盘点数量``, ``账面库存``); a file without a header is read as
``sku,counted``. Rows whose count is left blank are skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import and_, func, select

from koudai_flask.errors import KoudaiError
from koudai_flask.models import Product, Sku, StockLevel
from koudai_flask.services import inventory, staff, stocktake
from koudai_flask.services.customer_csv import text_cell
from koudai_flask.services.transaction import current_session

# ``counted`` is left blank: the counter's column.
EXPORT_COLUMNS = [
    "sku",
    "product",
    "variant",
    "barcode",
    "on_hand",
    "reserved",
    "available",
    "counted",
]
# What a header cell may say, folded to lower case, for each column the upload reads.
HEADER_NAMES = {
    "sku": frozenset({"sku", "sku code", "code", "商品编码", "sku编码", "商家编码", "编码"}),
    "counted": frozenset({"counted", "count", "盘点数量", "盘点数", "实盘数量", "实际库存"}),
    "seen": frozenset({"on_hand", "on hand", "账面库存", "账面数量"}),
}
MAX_ROWS = 5000


def export_stock(user_id: str, *, batch: int = 1000) -> Iterator[str]:
    """CSV text of every SKU's stock at the default location, by SKU code, batch by batch."""
    staff.require(user_id, "stock.adjust")
    session = current_session()
    location = inventory.get_location(session)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    yield "\ufeff" + out.getvalue()  # a BOM, so spreadsheet programs read UTF-8 Chinese
    on_hand = func.coalesce(StockLevel.on_hand, 0)
    reserved = func.coalesce(StockLevel.reserved, 0)
    query = (
        select(Sku, Product.title, on_hand, reserved)
        .join(Product, Product.id == Sku.product_id)
        .outerjoin(
            StockLevel, and_(StockLevel.sku_id == Sku.id, StockLevel.location_id == location.id)
        )
        .order_by(Sku.code)
        .limit(batch)
    )
    last = None
    while True:
        page = query if last is None else query.where(Sku.code > last)
        rows = session.execute(page).all()
        if not rows:
            break
        out.seek(0)
        out.truncate()
        for sku, title, held, promised in rows:
            writer.writerow(
                [
                    text_cell(sku.code),
                    text_cell(title),
                    text_cell(sku.label if sku.attributes else ""),
                    text_cell(sku.barcode or ""),
                    held,
                    promised,
                    held - promised,
                    "",
                ]
            )
        yield out.getvalue()
        last = rows[-1][0].code
        session.expunge_all()


@dataclass(frozen=True)
class RowResult:
    """One row's outcome: ``counted`` (the book changed), ``unchanged`` (it showed the count
    already), ``incomplete`` (no SKU code), ``duplicate`` (a SKU counted on an earlier row),
    ``too_many_rows``, or ``refused`` with the service's error in ``refusal``."""

    row: int
    sku: str
    outcome: str
    before: int = 0
    after: int = 0
    refusal: KoudaiError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("counted", "unchanged")


def count_from_csv(user_id: str, text: str, *, max_rows: int = MAX_ROWS) -> list[RowResult]:
    """Book every filled row's count, each on its own (see the module's docstring)."""
    staff.require(user_id, "stock.adjust")
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    columns = {"sku": 0, "counted": 1}  # no header: sku,counted
    results: list[RowResult] = []
    seen_codes: set[str] = set()
    header_read = False
    for index, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if not header_read:
            header_read = True
            named = _header(cells)
            if named is not None:
                columns = named
                continue
        if index > max_rows:
            results.append(RowResult(index, "", "too_many_rows"))
            break
        code, counted, seen = (_cell(cells, columns.get(key)) for key in ("sku", "counted", "seen"))
        if not counted:
            continue  # not counted: the row is left as it is
        if not code:
            results.append(RowResult(index, "", "incomplete"))
            continue
        if code in seen_codes:
            results.append(RowResult(index, code, "duplicate"))
            continue
        seen_codes.add(code)
        results.append(_count_row(user_id, index, code, counted, seen))
    return results


def _header(cells: list[str]) -> dict[str, int] | None:
    """The columns a header row names (SKU and count at least), or None if it is data."""
    found: dict[str, int] = {}
    for position, cell in enumerate(cells):
        for key, names in HEADER_NAMES.items():
            if cell.casefold() in names and key not in found:
                found[key] = position
    return found if {"sku", "counted"} <= found.keys() else None


def _cell(cells: list[str], position: int | None) -> str:
    return cells[position] if position is not None and position < len(cells) else ""


def _count_row(user_id: str, index: int, code: str, counted: str, seen: str) -> RowResult:
    number = int(counted) if counted.isascii() and counted.isdigit() else -1
    try:
        done = stocktake.count(
            user_id,
            code,
            number,
            seen=int(seen) if seen.isascii() and seen.isdigit() else None,
        )
    except KoudaiError as exc:
        return RowResult(index, code, "refused", refusal=exc)
    outcome = "counted" if done.change else "unchanged"
    return RowResult(index, code, outcome, before=done.before, after=done.on_hand)


__all__ = ["EXPORT_COLUMNS", "MAX_ROWS", "RowResult", "count_from_csv", "export_stock"]
