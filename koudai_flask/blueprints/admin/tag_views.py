"""Tags: the list with how many customers carry each, and the form for manual and rule tags.

A rule that does not parse is shown back in the form with the parser's message and a 422;
nothing is saved. Saving a rule recomputes the tag for every customer right after commit.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from koudai_flask.blueprints.admin import rule_help
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import rule_tags, tags


def _render(status: int = 200, editing: int | None = None) -> ResponseReturnValue:
    return render_template(
        "koudai/admin/tags.html",
        tags=tags.all_tags(),
        fields=rule_help.rule_fields(),
        typed=request.form if request.method == "POST" else {},
        editing=editing,
    ), status


def register(bp: Blueprint) -> None:
    @bp.get("/customers/tags")
    @staff_required("customers.view")
    def tags_list() -> ResponseReturnValue:
        return _render()

    @bp.post("/customers/tags")
    @bp.post("/customers/tags/<int:tag_id>")
    @staff_required("customers.edit")
    def tag_save(tag_id: int | None = None) -> ResponseReturnValue:
        checked_form()
        form = request.form
        rule = form.get("rule", "") if form.get("kind") == "rule" else None
        try:
            rule_tags.save_rule_tag(
                actor_id(),
                form.get("name", ""),
                rule,
                description=form.get("description", ""),
                tag_id=tag_id,
            )
        except KoudaiError as exc:
            if exc.http_status in (403, 404):
                abort(exc.http_status)
            flash(refusal_text(exc), "error")
            return _render(exc.http_status, editing=tag_id)
        flash(_k("Tag saved."), "success")
        return redirect(url_for(".tags_list")), 303

    @bp.post("/customers/tags/<int:tag_id>/delete")
    @staff_required("customers.edit")
    def tag_delete(tag_id: int) -> ResponseReturnValue:
        checked_form()
        try:
            rule_tags.delete_tag(actor_id(), tag_id)
        except KoudaiError as exc:
            abort(exc.http_status if exc.http_status in (403, 404) else 400)
        flash(_k("Tag deleted."), "success")
        return redirect(url_for(".tags_list")), 303
