"""Stock as a spreadsheet: the book downloaded, counts filled in and uploaded (盘点表格).

Each filled row is a stocktake count, booked on its own or refused with its reason in
Chinese, changing nothing; on SQLite and PostgreSQL through the back office's pages.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry
from koudai_flask.services import orders, stock_csv
from tests.test_admin import login
from tests.test_stocktake import ledger, shop, text

__all__ = ["shop"]  # the fixture, shared with the scanner's tests

EXPORT = "/shop-admin/stock/export.csv"
IMPORT = "/shop-admin/stock/import"


def table(response: Any) -> list[list[str]]:
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")  # spreadsheets read it as UTF-8
    return list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))


def upload(client: Any, content: str | bytes, *, csrf: bool = True) -> Any:
    raw = content.encode("utf-8") if isinstance(content, str) else content
    data: dict[str, Any] = {"file": (io.BytesIO(raw), "stock.csv")}
    if csrf:
        data["csrf_token"] = client.csrf
    return client.post(IMPORT, data=data, content_type="multipart/form-data")


def outcomes(response: Any) -> list[tuple[str, str]]:
    page = response.get_data(as_text=True)
    return re.findall(r'data-outcome="(\w+)"><td[^>]*>\d+</td><td[^>]*>([^<]*)</td>', page)


def filled(rows: list[list[str]], counts: dict[str, str]) -> str:
    """The export with the ``counted`` column filled for ``counts``' SKUs."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(rows[0])
    for row in rows[1:]:
        writer.writerow(row[:-1] + [counts.get(row[0], "")])
    return out.getvalue()


def audits(app: Flask) -> int:
    with app.app_context():
        session = get_state().session
        query = select(func.count()).where(AuditEntry.action == "stock.count")
        return int(session.scalar(query) or 0)


def test_the_export_is_the_book_with_a_blank_counted_column(shop):
    app, _ = shop
    rows = table(login(app, "warehouse").get(EXPORT))
    assert rows[0] == stock_csv.EXPORT_COLUMNS
    assert [row[0] for row in rows[1:]] == sorted(row[0] for row in rows[1:])
    by_code = {row[0]: row for row in rows[1:]}
    assert by_code["KET"][4:] == ["50", "4", "46", ""]
    assert by_code["MUG-R"][1:] == ["Mug", "", "6901234567892", "9", "0", "9", ""]
    assert login(app, "customer_service").get(EXPORT).status_code == 403


def test_filled_counts_are_booked_row_by_row_and_a_second_upload_changes_nothing(shop):
    app, _ = shop
    client = login(app, "warehouse")
    rows = table(client.get(EXPORT))
    sheet = filled(rows, {"KET": "48", "MUG-R": "9", "MUG-BOX": "十二"})
    sheet += "NOPE,,,,,,,3\nKET,,,,50,,,47\n,,,,,,,5\n"
    answer = upload(client, sheet)
    assert answer.status_code == 200
    assert outcomes(answer) == [
        ("counted", "KET"),
        ("refused", "MUG-BOX"),
        ("unchanged", "MUG-R"),
        ("refused", "NOPE"),
        ("duplicate", "KET"),
        ("incomplete", ""),
    ]
    page = text(answer)
    assert "已入账 1 条盘点，1 条账面本已相符，4 条被拒绝。" in page
    assert "50 → 48（-2）" in page and "此 SKU 已在前面的行中盘点过。" in page
    assert ledger(app, "KET") == (48, 4, 48, 1)
    assert ledger(app, "MUG-BOX")[0] == 9 and ledger(app, "MUG-BOX")[3] == 0
    assert audits(app) == 2  # a count that confirms the book is audited too

    again = upload(client, filled(rows, {"KET": "48"}))  # the same file, the book now 48
    assert outcomes(again) == [("unchanged", "KET")]
    assert ledger(app, "KET") == (48, 4, 48, 1) and audits(app) == 3


def test_a_row_whose_book_moved_since_the_export_is_refused(shop):
    app, numbers = shop
    client = login(app, "warehouse")
    rows = table(client.get(EXPORT))
    with app.app_context():
        orders.ship(numbers["web"], carrier="shunfeng", tracking_number="SF78")  # 50 -> 49
    answer = upload(client, filled(rows, {"KET": "47", "MUG-R": "8"}))
    assert outcomes(answer) == [("refused", "KET"), ("counted", "MUG-R")]
    assert "KET 的账面库存从 50 变为 49" in text(answer)
    assert ledger(app, "KET")[0] == 49 and ledger(app, "KET")[3] == 0
    assert ledger(app, "MUG-R") == (8, 0, 8, 1)


def test_a_count_below_what_orders_hold_is_refused(shop):
    app, _ = shop
    answer = upload(login(app, "warehouse"), "KET,3\n")  # no header: sku,counted
    assert outcomes(answer) == [("refused", "KET")]
    assert "KET 有 4 件被未完成的订单占用" in text(answer)
    assert ledger(app, "KET") == (50, 4, 50, 0)


def test_a_chinese_spreadsheet_saved_on_windows_is_read_by_its_header(shop):
    app, _ = shop
    sheet = "商品名称,商品编码,盘点数量\r\n马克杯,MUG-R,7\r\n水壶,KET,\r\n"
    answer = upload(login(app, "warehouse"), sheet.encode("gb18030"))
    assert outcomes(answer) == [("counted", "MUG-R")]  # the blank count is left alone
    assert ledger(app, "MUG-R") == (7, 0, 7, 1) and ledger(app, "KET")[3] == 0


def test_an_upload_needs_the_permission_a_token_and_a_file(shop):
    app, _ = shop
    warehouse = login(app, "warehouse")
    assert upload(warehouse, "KET,49\n", csrf=False).status_code == 400
    assert upload(login(app, "customer_service"), "KET,49\n").status_code == 403
    empty = warehouse.post(
        IMPORT, data={"csrf_token": warehouse.csrf}, content_type="multipart/form-data"
    )
    assert empty.status_code == 303
    assert "请选择" in text(warehouse.get(empty.headers["Location"]))
    assert ledger(app, "KET") == (50, 4, 50, 0)
    with app.app_context():
        staff_id = "staff:warehouse@shop.cn"
        sheet = "".join(f"SKU-{n},1\n" for n in range(5))
        results = stock_csv.count_from_csv(staff_id, sheet, max_rows=3)
    assert [r.outcome for r in results] == ["refused", "refused", "refused", "too_many_rows"]
