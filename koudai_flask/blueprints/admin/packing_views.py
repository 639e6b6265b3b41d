"""The packing table: printing packing slips (发货单) with the pick list (拣货单), and
shipping by scanner (扫码发货): scan a slip's barcode, then the courier's waybill."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask import barcodes
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, NotFound, PermissionDenied
from koudai_flask.i18n import CARRIERS
from koudai_flask.services import packing

# The carrier of the parcel shipped last from the scan page, chosen again for the next.
SCAN_CARRIER = "koudai_scan_carrier"


def register(bp: Blueprint) -> None:
    @bp.post("/orders/slips")
    @staff_required("orders.ship")
    def orders_slips() -> ResponseReturnValue:
        """The ticked orders' slips (``which=ticked``), or every paid order's whose slip was
        never printed (``which=unprinted``), as one document to print."""
        checked_form()
        which = request.form.get("which")
        if which not in ("ticked", "unprinted"):
            abort(400)
        numbers = request.form.getlist("numbers") if which == "ticked" else None
        try:
            run = packing.print_slips(actor_id(), numbers, unprinted_only=which == "unprinted")
        except PermissionDenied:
            abort(403)
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return redirect(url_for(".orders_list"), 303)
        return render_template("koudai/admin/packing.html", run=run, barcode=barcodes.svg)

    @bp.get("/orders/scan")
    @staff_required("orders.ship")
    def orders_scan() -> ResponseReturnValue:
        """Scan to ship: the slip's order number (ours, or the channel's own order id) finds
        the order; a paid one shows what goes in the parcel and asks for the waybill, which
        ships it and comes back here."""
        number = request.args.get("number", "").strip()[: packing.MAX_SCANNED]
        order, error, status, choices = None, None, 200, []
        if number:
            try:
                order = packing.scanned_order(actor_id(), number)
            except packing.ScanAmbiguous as exc:
                error, status, choices = refusal_text(exc), 409, exc.numbers
            except (NotFound, PermissionDenied):  # another channel's order: not theirs
                gone = NotFound(number, reason="unknown_order", detail={"number": number})
                error, status = refusal_text(gone), 404
        return render_template(
            "koudai/admin/scan.html",
            number=number,
            order=order,
            error=error,
            choices=choices,
            carriers=CARRIERS,
            carrier=session.get(SCAN_CARRIER, "shunfeng"),
            form=FlaskForm(),
        ), status


def remember_carrier(carrier: str) -> None:
    """A parcel went out from the scan page: its carrier is chosen for the next one."""
    session[SCAN_CARRIER] = carrier
