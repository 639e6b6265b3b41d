"""The rule language's fields as the tag and segment pages explain them, in the reader's
language (the service keeps its English help for the API and error messages)."""

from __future__ import annotations

from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.services import tag_rules

KIND_LABELS = {
    "number": _l("number"),
    "days": _l("days"),
    "date": _l("date"),
    "set": _l("any of several values"),
}

FIELD_HELP = {
    "total_spent": _l("spend on counted orders, in fen, less refunds"),
    "order_count": _l("counted (paid, not refunded) orders"),
    "rfm_r": _l("recency score 0-5"),
    "rfm_f": _l("frequency score 0-5"),
    "rfm_m": _l("monetary score 0-5"),
    "days_since_last_order": _l("whole days since the last counted order"),
    "days_since_first_order": _l("whole days since the first counted order"),
    "created_days": _l("whole days since the customer was first seen"),
    "last_order_date": _l("day of the last counted order"),
    "first_order_date": _l("day of the first counted order"),
    "created_date": _l("day the customer was first seen"),
    "channel": _l("a channel (name or kind) of one of the customer's counted orders"),
    "city": _l("a city of a counted order's address or of the address book"),
    "tag": _l("a tag the customer carries"),
    "identity": _l("a kind of identity the customer has (wechat_openid, phone, ...)"),
}


def rule_fields() -> dict[str, tuple[str, str]]:
    """field -> (kind, help) for the help table; a field added to the language without a
    translation here shows the service's English help."""
    return {
        name: (str(KIND_LABELS.get(kind, kind)), str(FIELD_HELP.get(name, help_text)))
        for name, (kind, help_text) in tag_rules.FIELDS.items()
    }
