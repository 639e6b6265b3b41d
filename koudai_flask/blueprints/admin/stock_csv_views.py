"""Stock as a spreadsheet (``stock.adjust``): the book downloaded, the counts uploaded.

``GET /stock/export.csv`` is every SKU's stock at the default location with a blank
``counted`` column; ``POST /stock/import`` books the filled counts, each row on its own
(``services.stock_csv``), and shows what became of every row in the reader's language.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from koudai_flask.blueprints.admin.common import (
    actor_id,
    checked_form,
    staff_required,
    uploaded_text,
)
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import funnel_stats, stock_csv


def row_text(result: stock_csv.RowResult) -> str:
    """An uploaded row's outcome in the reader's language."""
    if result.outcome == "counted":
        return _k(
            "%(before)d → %(after)d (%(change)+d)",
            before=result.before,
            after=result.after,
            change=result.after - result.before,
        )
    if result.outcome == "unchanged":
        return _k("Already %(count)d: nothing to change.", count=result.after)
    if result.outcome == "incomplete":
        return _k("Needs the SKU code.")
    if result.outcome == "duplicate":
        return _k("This SKU was counted on an earlier row.")
    if result.outcome == "too_many_rows":
        return _k("Too many rows: split the file and upload each part.")
    assert result.refusal is not None
    return refusal_text(result.refusal)


def register(bp: Blueprint) -> None:
    @bp.get("/stock/export.csv")
    @staff_required("stock.adjust")
    def stock_export() -> ResponseReturnValue:
        name = f"stock-{funnel_stats.today().isoformat()}.csv"
        return Response(
            stream_with_context(stock_csv.export_stock(actor_id())),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={name}"},
        )

    @bp.post("/stock/import")
    @staff_required("stock.adjust")
    def stock_import() -> ResponseReturnValue:
        checked_form()
        text = uploaded_text()
        if text is None:
            flash(_k("Choose a CSV file."), "error")
            return redirect(url_for(".stock_list"), 303)
        results = stock_csv.count_from_csv(actor_id(), text)
        return render_template("koudai/admin/stock_import.html", results=results, row_text=row_text)
