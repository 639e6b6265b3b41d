"""A form field's refusal in the reader's language.

Services validate with marshmallow and raise ``ValidationError`` whose ``messages`` hold
marshmallow's English sentences per field ("Longer than maximum length 60."). A page shows
the first of them as "<field>: <problem>", both in the reader's language when koudai knows
them: the field by its name in the forms (``FIELD_LABELS``), the problem by marshmallow's
message templates and koudai's own validator messages. A message it does not know yields
None, and the caller keeps the service's English sentence.
"""

from __future__ import annotations

import re
from typing import Any

from koudai_flask.errors import KoudaiError, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.schemas import first_message

# Field names as services name them, as the forms label them.
FIELD_LABELS = {
    "email": _l("Email"),
    "phone": _l("Phone"),
    "password": _l("Password"),
    "name": _l("Name"),
    "province": _l("Province"),
    "city": _l("City"),
    "district": _l("District"),
    "street": _l("Street address"),
    "postcode": _l("Postcode"),
    "title": _l("Title"),
    "description": _l("Description"),
    "code": _l("Item code"),
    "price": _l("Price"),
    "stock": _l("Stock"),
    "barcode": _l("Barcode"),
    "weight": _l("Weight"),
    "quantity": _l("Quantity"),
    "note": _l("Note"),
    "keyword": _l("Keyword"),
    "reply": _l("Reply"),
    "trigger": _l("Trigger"),
    "match": _l("Match"),
    "severity": _l("Severity"),
    "url": _l("URL"),
    "scopes": _l("Scopes"),
    "subject": _l("Subject"),
    "body": _l("Words"),
    # The segment form's filters.
    "min_spent_yuan": _l("Spent at least (yuan)"),
    "max_spent_yuan": _l("Spent at most (yuan)"),
    "min_orders": _l("At least this many orders"),
    "min_rfm_r": _l("RFM at least (R, F, M)"),
    "min_rfm_f": _l("RFM at least (R, F, M)"),
    "min_rfm_m": _l("RFM at least (R, F, M)"),
    "last_order_from": _l("Last order from"),
    "last_order_to": _l("Last order until"),
    "first_seen_from": _l("First seen from"),
    "first_seen_to": _l("First seen until"),
    "tag": _l("Tag"),
    "channel": _l("Channel"),
    "slug": _l("Address name"),
}

# Messages with no value in them: marshmallow's defaults and koudai's own validators'.
_FIXED = {
    "Missing data for required field.": _l("is required."),
    "Shorter than minimum length 1.": _l("is required."),
    "Field may not be null.": _l("is required."),
    "Not a valid string.": _l("must be text."),
    "Not a valid utf-8 string.": _l("must be text."),
    "Not a valid integer.": _l("must be a whole number."),
    "Not a valid email address.": _l("is not a valid address."),
    "Not a valid boolean.": _l("must be yes or no."),
    "Not a valid URL.": _l("is not a valid web address."),
    "String does not match expected pattern.": _l("is not in the expected format."),
    "Invalid value.": _l("is not a valid value."),
    "Unknown field.": _l("is not a field of this form."),
    "a mainland mobile number, 11 digits": _l("must be a mainland mobile number of 11 digits."),
    "may not contain control characters": _l("may not contain control characters."),
    "letters, digits, . _ - only": _l("may hold only letters, digits, . _ and -."),
    "lower-case letters, digits and -": _l("may hold only lower-case letters, digits and -."),
    "not a known Kuaidi100 code": _l("is not a carrier koudai knows."),
    "give an email or a phone number": _l("or a phone number is needed."),
}


# Messages with values in them, as marshmallow's Length, Range and OneOf word them; the
# values ({min}, {max}, {choices}) are kept.
_WITH_VALUES = [
    ("Longer than maximum length {max}.", _l("may be at most %(max)s characters long.")),
    ("Shorter than minimum length {min}.", _l("needs at least %(min)s characters.")),
    ("Length must be between {min} and {max}.", _l("needs %(min)s to %(max)s characters.")),
    (
        "Must be greater than or equal to {min} and less than or equal to {max}.",
        _l("must be from %(min)s to %(max)s."),
    ),
    ("Must be greater than or equal to {min}.", _l("must be at least %(min)s.")),
    ("Must be greater than {min}.", _l("must be more than %(min)s.")),
    ("Must be less than or equal to {max}.", _l("must be at most %(max)s.")),
    ("Must be one of: {choices}.", _l("must be one of: %(choices)s.")),
]


def _pattern(template: str) -> re.Pattern[str]:
    """``{name}`` of a marshmallow template as a named group: a number, or any text."""

    def group(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"(?P<{name}>.+)" if name == "choices" else f"(?P<{name}>-?\\d+)"

    return re.compile(re.sub(r"\\\{(\w+)\\\}", group, re.escape(template)) + "$")


_PATTERNS = [(_pattern(template), said) for template, said in _WITH_VALUES]


def problem_text(message: str) -> str | None:
    """One marshmallow or koudai validator message in the reader's language, or None."""
    fixed = _FIXED.get(message)
    if fixed is not None:
        return str(fixed)
    for pattern, said in _PATTERNS:
        match = pattern.match(message)
        if match:
            return str(said) % match.groupdict()
    return None


def field_refusal(messages: Any) -> str | None:
    """ "<field>: <problem>" for the first of ``messages``, or None when the problem is not
    one koudai can say in the reader's language."""
    path, message = first_message(messages)
    problem = problem_text(message)
    if problem is None:
        return None
    if path in ("", "_schema"):
        return problem
    # "skus.2.price": the last name is the field; the rest says where it sits.
    name = path.rsplit(".", 1)[-1]
    label = FIELD_LABELS.get(name)
    field = str(label) if label is not None else path
    return _k("%(field)s %(problem)s", field=field, problem=problem)


def field_errors(messages: Any, labels: dict[str, str]) -> dict[str, str]:
    """ "<label> <problem>" per field of a form (``labels``: field name -> its label) that
    ``messages`` refuses; a problem koudai cannot say in the reader's language stays as
    marshmallow wrote it. Fields the form does not have are left out."""
    if not isinstance(messages, dict):
        return {}
    found = {}
    for name, refused in messages.items():
        if name in labels:
            _, message = first_message(refused)
            problem = problem_text(message) or message
            found[name] = _k("%(field)s %(problem)s", field=labels[name], problem=problem)
    return found


def form_errors(error: KoudaiError, form: Any) -> dict[str, str]:
    """:func:`field_errors` for the fields of a WTForms ``form`` that a service's refusal
    names (none for a refusal that is not a ``ValidationError``)."""
    if not isinstance(error, ValidationError):
        return {}
    return field_errors(error.messages, {field.name: str(field.label.text) for field in form})
