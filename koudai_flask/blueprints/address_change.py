"""What the staff's and the buyer's change-of-address pages answer a post: one rule for both.

A field of the typed address the service refuses is said beside it (the page again, 422);
any other refusal (the order moved on, is kept elsewhere, is being packed) goes back to the
order's page with the reason; a change goes back to it saying so.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect
from flask.typing import ResponseReturnValue
from wtforms import Form

from koudai_flask.blueprints.field_messages import form_errors
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import lazy_gettext as _l

# Said by either page when the order's address cannot change any more.
NOT_CHANGEABLE = _l("The address of this order can no longer be changed here.")


def answer_change(
    form: Form,
    change: Callable[[], object],
    page: Callable[[dict[str, str]], str],
    *,
    back: str,
    done: str,
) -> ResponseReturnValue:
    """Run ``change()`` and answer as above; ``page(field_errors)`` draws the form again."""
    try:
        change()
    except KoudaiError as exc:
        errors = form_errors(exc, form)
        if errors:
            return page(errors), 422
        flash(refusal_text(exc), "error")
        return redirect(back, 303)
    flash(done, "success")
    return redirect(back, 303)
