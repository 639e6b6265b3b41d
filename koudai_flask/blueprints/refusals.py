"""A service's refusal as a page says it: in the reader's language where koudai knows it.

A refusal names its ``reason`` in one word and its figures in ``detail``
(``koudai_flask.errors.KoudaiError``); the words for each reason are in ``refusal_words``,
said here with the figures put in as a page shows them (amounts in yuan, field and
permission names as the forms label them). The API and the CLI say the service's English
``message`` instead.
"""

from __future__ import annotations

from typing import Any

from koudai_flask.blueprints.common import format_fen
from koudai_flask.blueprints.field_messages import FIELD_LABELS, field_refusal
from koudai_flask.blueprints.refusal_words import REASONS as _REASONS
from koudai_flask.errors import (
    InvalidTransition,
    KoudaiError,
    NotFound,
    OutOfStock,
    ValidationError,
)
from koudai_flask.i18n import PERMISSION_LABELS, gettext, lazy_gettext, role_label, status_label

# An order action, as the refusal of an impossible transition names it.
_ACTIONS = {
    "pay": lazy_gettext("paid"),
    "cancel": lazy_gettext("cancelled"),
    "ship": lazy_gettext("shipped"),
    "deliver": lazy_gettext("marked delivered"),
    "complete": lazy_gettext("completed"),
    "request_refund": lazy_gettext("sent for a refund"),
    "refund": lazy_gettext("refunded"),
    "decline_refund": lazy_gettext("kept from a refund"),
    "withdraw_refund": lazy_gettext("taken out of its refund"),
    "change_address": lazy_gettext("sent to another address"),
}


def refusal_text(error: KoudaiError) -> str:
    """A service's refusal for a page, in the reader's language where koudai knows it: a
    ``reason`` it names, an order action its state does not allow, stock that is short, a
    form field marshmallow refused (``field_messages``), something no longer there
    (``NotFound``). Anything else keeps the service's English ``message`` (as the API and
    the CLI say it)."""
    if isinstance(error, InvalidTransition) and error.action in _ACTIONS:
        return gettext(
            "Order %(number)s is %(status)s: it cannot be %(action)s.",
            number=error.number,
            status=status_label(error.status),
            action=str(_ACTIONS[error.action]),
        )
    if isinstance(error, OutOfStock):
        return gettext(
            "Not enough stock of %(sku)s: %(requested)d asked for, %(available)d available.",
            sku=error.sku,
            requested=error.requested,
            available=error.available,
        )
    found = _REASONS.get(error.reason or "")
    if found is not None:
        return str(found) % _shown(error.detail or {})
    if isinstance(error, ValidationError) and error.messages:
        return field_refusal(error.messages) or error.message
    if isinstance(error, NotFound):  # a page's link to something deleted meanwhile
        return gettext("This is no longer here: it may have just been deleted. Reload the page.")
    return error.message


class _Figures(dict[str, Any]):
    """A refusal's figures for ``%`` formatting; one the refusal did not give reads empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _shown(detail: dict[str, Any]) -> _Figures:
    """A refusal's figures as a page says them: ``*_fen`` amounts also as ``¥12.50``, a
    ``field`` by its label in the forms."""
    shown = _Figures(detail)
    for key, value in detail.items():
        if key.endswith("_fen") and isinstance(value, int):
            shown[key.removesuffix("_fen")] = format_fen(value)
    label = FIELD_LABELS.get(str(detail.get("field")))
    if label is not None:
        shown["field"] = str(label)
    for key, value in detail.items():  # names: 德邦快递、德邦物流
        if isinstance(value, list) and key != "permissions":
            shown[key] = gettext(", ").join(map(str, value))
    if isinstance(detail.get("permissions"), list):
        names = [str(PERMISSION_LABELS.get(p, p)) for p in detail["permissions"]]
        shown["permissions"] = gettext(", ").join(names)
    if "role" in detail:
        shown["role"] = role_label(str(detail["role"]))
    return shown
