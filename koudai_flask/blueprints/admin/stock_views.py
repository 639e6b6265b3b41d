"""Stock: every SKU's levels, one SKU's ledger, adjustments by hand and low-stock thresholds.

Seeing and changing stock both need ``stock.adjust``: the warehouse holds it without
``catalog.edit``, and the figures are what its staff count against. Levels are those of
the default location (``KOUDAI_DEFAULT_LOCATION``), where adjustments go.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import and_, func, or_, select

from koudai_flask import barcodes
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.common import page_number
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.config import config_value
from koudai_flask.errors import KoudaiError, NotFound, PermissionDenied
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.models import Location, Product, Sku, StockLevel, StockMovement
from koudai_flask.services import catalog_admin, inventory, stock_alerts
from koudai_flask.services import stocktake as stocktake_service
from koudai_flask.services.transaction import current_session

PER_PAGE = 50
MAX_LABEL_SKUS = 100
MAX_LABEL_COPIES = 50
LEDGER_PER_PAGE = 30
_DELTA = re.compile(r"^[+-]?[0-9]{1,6}$")
REASON_LABELS = {
    "adjustment": _l("Adjusted by hand"),
    "count": _l("Stocktake"),
    "reservation": _l("Held for an order"),
    "release": _l("Hold released"),
    "expiry": _l("Hold expired"),
    "shipment": _l("Shipped"),
    "return": _l("Came back with a refund"),
}


def _label_value(sku: Sku) -> str | None:
    """What a SKU's label barcode carries: its own barcode, else its code; None when
    neither is printable ASCII (the label then shows the code as text only)."""
    for value in (sku.barcode or "", sku.code):
        try:
            barcodes.symbols(value)
        except barcodes.BarcodeError:
            continue
        return value
    return None


def _sku_or_404(code: str) -> Sku:
    try:
        return inventory.get_sku(current_session(), code)
    except NotFound:
        abort(404)


def _done(code: str, action: Callable[[], object], message: str) -> ResponseReturnValue:
    """Run a service call; its refusal is a flash on the SKU's page (403 stays 403)."""
    try:
        action()
    except PermissionDenied:
        abort(403)
    except KoudaiError as exc:
        flash(refusal_text(exc), "error")
    else:
        flash(message, "success")
    return redirect(url_for(".stock_sku", code=code), 303)


def register(bp: Blueprint) -> None:
    @bp.get("/stock")
    @staff_required("stock.adjust")
    def stock_list() -> ResponseReturnValue:
        session, page = current_session(), page_number()
        location = inventory.get_location(session)
        q = request.args.get("q", "").strip()[:100]
        low = request.args.get("low") == "1"
        wanted = request.args.get("wanted") == "1"  # buyers wait for it (到货提醒)
        on_hand = func.coalesce(StockLevel.on_hand, 0)
        reserved = func.coalesce(StockLevel.reserved, 0)
        threshold = func.coalesce(Sku.low_stock_threshold, config_value("LOW_STOCK_THRESHOLD"))
        conditions = []
        for word in q.lower().split()[:8]:
            pattern = f"%{word}%"
            conditions.append(
                or_(func.lower(Sku.code).like(pattern), func.lower(Product.title).like(pattern))
            )
        if low:
            conditions += [Sku.active.is_(True), on_hand - reserved <= threshold]
        alerts = stock_alerts.waiting_counts()
        waiting = func.coalesce(alerts.c.waiting, 0)
        if wanted:
            conditions.append(waiting > 0)
        query = (
            select(Sku, Product.title, on_hand, reserved, threshold, waiting)
            .join(Product, Product.id == Sku.product_id)
            .outerjoin(
                StockLevel,
                and_(StockLevel.sku_id == Sku.id, StockLevel.location_id == location.id),
            )
            .outerjoin(alerts, alerts.c.sku_id == Sku.id)
            .where(*conditions)
        )
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        if wanted:  # the most wanted first: what to buy in
            order: tuple[Any, ...] = (waiting.desc(), Sku.code)
        elif low:
            order = (on_hand - reserved, Sku.code)
        else:
            order = (Product.title, Sku.id)
        rows = session.execute(
            query.order_by(*order).limit(PER_PAGE).offset((page - 1) * PER_PAGE)
        ).all()
        return render_template(
            "koudai/admin/stock.html",
            rows=rows,
            total=total,
            q=q,
            low=low,
            wanted=wanted,
            page=page,
            pages=max(1, -(-total // PER_PAGE)),
            location=location,
        )

    @bp.get("/stock/labels")
    @staff_required("stock.adjust")
    def stock_labels() -> ResponseReturnValue:
        """Shelf labels of the ticked SKUs, ``copies`` of each: a document to print whose
        barcodes the stocktake scanner reads (the SKU's own barcode, else its code)."""
        codes = list(dict.fromkeys(request.args.getlist("code")))[:MAX_LABEL_SKUS]
        raw = request.args.get("copies", "1").strip()
        copies = int(raw) if raw.isascii() and raw.isdigit() else 0
        if not codes or not 1 <= copies <= MAX_LABEL_COPIES:
            flash(
                _k(
                    "Tick the items to label, and ask for 1 to %(most)d copies of each.",
                    most=MAX_LABEL_COPIES,
                ),
                "error",
            )
            return redirect(url_for(".stock_list"), 303)
        found = {
            sku.code: sku
            for sku in current_session().scalars(select(Sku).where(Sku.code.in_(codes)))
        }
        labels = [(found[code], _label_value(found[code])) for code in codes if code in found]
        return render_template(
            "koudai/admin/labels.html", labels=labels, copies=copies, barcode=barcodes.svg
        )

    @bp.get("/stocktake")
    @staff_required("stock.adjust")
    def stocktake() -> ResponseReturnValue:
        """Stocktake by scanner: a scan finds the SKU, its count is entered below."""
        scanned = request.args.get("scan", "").strip()[:64]
        found = stocktake_service.find(scanned) if scanned else []
        level = None
        if len(found) == 1:
            session = current_session()
            level = inventory.stock_level(session, found[0], inventory.get_location(session))
        return render_template(
            "koudai/admin/stocktake.html",
            scanned=scanned,
            found=found,
            level=level,
            form=FlaskForm(),
        ), (404 if scanned and not found else 200)

    @bp.post("/stocktake")
    @staff_required("stock.adjust")
    def stocktake_count() -> ResponseReturnValue:
        checked_form()
        code = request.form.get("code", "")
        raw, seen = request.form.get("counted", "").strip(), request.form.get("seen", "")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 8):
            flash(_k("Enter how many you counted, a whole number."), "error")
            return redirect(url_for(".stocktake", scan=code), 303)
        try:
            done = stocktake_service.count(
                actor_id(), code, int(raw), seen=int(seen) if seen.isdigit() else None
            )
        except PermissionDenied:
            abort(403)
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return redirect(url_for(".stocktake", scan=code), 303)
        flash(
            _k(
                "%(sku)s: %(before)d → %(after)d (%(change)+d). Scan the next.",
                sku=done.sku,
                before=done.before,
                after=done.on_hand,
                change=done.change,
            ),
            "success",
        )
        return redirect(url_for(".stocktake"), 303)

    @bp.get("/stock/<code>")
    @staff_required("stock.adjust")
    def stock_sku(code: str) -> ResponseReturnValue:
        sku = _sku_or_404(code)
        session, page = current_session(), page_number()
        levels = session.execute(
            select(Location, StockLevel)
            .join(StockLevel, StockLevel.location_id == Location.id)
            .where(StockLevel.sku_id == sku.id)
            .order_by(Location.code)
        ).all()
        total = (
            session.scalar(
                select(func.count())
                .select_from(StockMovement)
                .where(StockMovement.sku_id == sku.id)
            )
            or 0
        )
        movements = session.scalars(
            select(StockMovement)
            .where(StockMovement.sku_id == sku.id)
            .order_by(StockMovement.created_at.desc(), StockMovement.id.desc())
            .limit(LEDGER_PER_PAGE)
            .offset((page - 1) * LEDGER_PER_PAGE)
        ).all()
        return render_template(
            "koudai/admin/stock_sku.html",
            sku=sku,
            levels=levels,
            movements=movements,
            total=total,
            page=page,
            pages=max(1, -(-total // LEDGER_PER_PAGE)),
            default_threshold=config_value("LOW_STOCK_THRESHOLD"),
            reason_label=lambda reason: str(REASON_LABELS.get(reason, reason)),
            form=FlaskForm(),
            # Buyers who asked to be told when it is back (到货提醒): demand the shelf lacks.
            waiting=stock_alerts.waiting_for(sku.code),
        )

    @bp.post("/stock/<code>/adjust")
    @staff_required("stock.adjust")
    def stock_adjust(code: str) -> ResponseReturnValue:
        checked_form()
        _sku_or_404(code)
        raw = request.form.get("delta", "").strip()
        if not _DELTA.match(raw) or int(raw) == 0:
            flash(_k("Write how many units come in (5) or go out (-5)."), "error")
            return redirect(url_for(".stock_sku", code=code), 303)
        reason = request.form.get("reason", "")
        if not reason.strip():
            flash(_k("Say why the stock changes."), "error")
            return redirect(url_for(".stock_sku", code=code), 303)
        return _done(
            code,
            lambda: catalog_admin.adjust_stock(actor_id(), code, int(raw), reason=reason),
            _k("Stock adjusted."),
        )

    @bp.post("/stock/<code>/threshold")
    @staff_required("stock.adjust")
    def stock_threshold(code: str) -> ResponseReturnValue:
        checked_form()
        _sku_or_404(code)
        raw = request.form.get("threshold", "").strip()
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 7):
            flash(_k("The threshold is a whole number, or empty for the shop's default."), "error")
            return redirect(url_for(".stock_sku", code=code), 303)
        value = int(raw) if raw else None
        return _done(
            code,
            lambda: catalog_admin.set_low_stock_threshold(actor_id(), code, value),
            _k("Threshold saved."),
        )
