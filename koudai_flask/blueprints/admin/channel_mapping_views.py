"""SKU mapping (``channels.manage``): bind the channel's SKUs to ours, by outer id or by hand.

The page reads what the channel lists live (a Taobao shop: every item on sale and its SKUs,
with the seller's ``outer_id``) and shows those no binding names yet. "Auto-bind" binds each
one whose outer id is one of our free SKU codes; the rest are mapped one by one, with their
allocation rule (share, buffer, cap). Channels that cannot list their SKUs are bound by
typing their ids.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask.blueprints.admin.channel_common import (
    channel_or_404,
    labels,
    read_remote,
    refused,
)
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.common import page_number
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import channel_admin, channel_bindings

PER_PAGE = 50
# Above this many free SKUs of ours each row gets a typed input with suggestions instead of
# a select, so the page stays small (one <datalist> rather than one long list per row).
SELECT_LIMIT = 150
_ID = re.compile(r"^[0-9A-Za-z_.:-]{1,64}$")
_COUNT = re.compile(r"^[0-9]{1,7}$")


def read_rule() -> tuple[dict[str, Any], str | None]:
    """The posted allocation rule, or the message of what is wrong with it."""
    form = request.form
    try:
        share = Decimal(form.get("share", "").strip() or "1")
    except InvalidOperation:
        share = Decimal(-1)
    if not share.is_finite() or not Decimal(0) <= share <= Decimal(1):
        return {}, _k("The share is a number from 0 to 1, like 0.5.")
    buffer = form.get("buffer", "").strip() or "0"
    cap = form.get("cap", "").strip()
    if not _COUNT.match(buffer) or (cap and not _COUNT.match(cap)):
        return {}, _k("Buffer and cap are whole numbers (an empty cap: no cap).")
    return {"share": share, "buffer": int(buffer), "cap": int(cap) if cap else None}, None


def _to_mapping(name: str) -> ResponseReturnValue:
    return redirect(url_for(".channel_mapping", name=name), 303)


def register(bp: Blueprint) -> None:
    @bp.get("/channels/<name>/mapping")
    @staff_required("channels.manage")
    def channel_mapping(name: str) -> ResponseReturnValue:
        info = channel_or_404(name, "channels.manage")
        remote, problem = read_remote(info)
        unbound = channel_bindings.unbound_remote(info.id, remote)
        codes = channel_bindings.unbound_sku_codes(info.id)
        free = set(codes)
        carried = Counter(r.sku_code for r in unbound if r.sku_code)
        page = page_number()
        return render_template(
            "koudai/admin/channel_mapping.html",
            info=info,
            problem=problem,
            rows=unbound[(page - 1) * PER_PAGE : page * PER_PAGE],
            total=len(unbound),
            page=page,
            pages=max(1, -(-len(unbound) // PER_PAGE)),
            matching=sum(1 for code, n in carried.items() if n == 1 and code in free),
            codes=codes,
            free=free,
            use_select=len(codes) <= SELECT_LIMIT,
            listings=channel_admin.listing_rows(info.id),
            form=FlaskForm(),
            **labels(),
        )

    @bp.post("/channels/<name>/mapping/bind")
    @staff_required("channels.manage")
    def channel_bind(name: str) -> ResponseReturnValue:
        checked_form()
        channel_or_404(name, "channels.manage")
        code = request.form.get("sku_code", "").strip()
        item = request.form.get("item", "").strip()
        sku = request.form.get("sku", "").strip()
        rule, error = read_rule()
        if not code or len(code) > 64:
            error = _k("Choose one of our SKUs.")
        elif not _ID.match(item) or (sku and not _ID.match(sku)):
            error = _k("Their item id (and SKU id) are letters and digits.")
        if error:
            flash(error, "error")
            return _to_mapping(name)
        try:
            channel_bindings.bind(
                actor_id(), name, code, external_item_id=item, external_sku_id=sku, **rule
            )
        except KoudaiError as exc:
            refused(exc)
        else:
            flash(_k("%(code)s bound to item %(item)s.", code=code, item=item), "success")
        return _to_mapping(name)

    @bp.post("/channels/<name>/mapping/auto")
    @staff_required("channels.manage")
    def channel_auto_bind(name: str) -> ResponseReturnValue:
        checked_form()
        info = channel_or_404(name, "channels.manage")
        remote, problem = read_remote(info)
        if problem:
            flash(problem, "error")
            return _to_mapping(name)
        try:
            report = channel_bindings.auto_bind(actor_id(), name, remote)
        except KoudaiError as exc:
            refused(exc)
            return _to_mapping(name)
        flash(_k("%(n)d SKUs bound by outer id.", n=len(report.bound)), "success")
        if report.ambiguous:
            codes = ", ".join(report.ambiguous)
            flash(
                _k("Outer ids on several of their SKUs, to map by hand: %(codes)s", codes=codes),
                "error",
            )
        return _to_mapping(name)

    @bp.post("/channels/<name>/mapping/unlink")
    @staff_required("channels.manage")
    def channel_unlink(name: str) -> ResponseReturnValue:
        checked_form()
        channel_or_404(name, "channels.manage")
        code = request.form.get("sku_code", "").strip()
        if not code:
            flash(_k("Choose one of our SKUs."), "error")
            return _to_mapping(name)
        try:
            channel_bindings.unlink(actor_id(), name, code)
        except KoudaiError as exc:
            refused(exc)
        else:
            flash(_k("%(code)s unlinked.", code=code), "success")
        return _to_mapping(name)
