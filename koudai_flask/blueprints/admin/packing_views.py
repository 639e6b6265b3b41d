"""Printing packing slips (发货单) with the pick list (拣货单): ``services.packing``."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from koudai_flask import barcodes
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, PermissionDenied
from koudai_flask.services import packing


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
