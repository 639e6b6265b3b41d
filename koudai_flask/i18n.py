"""Languages: the shop's strings in zh_CN (default) and en, through Flask-Babel.

Our messages live in their own gettext domain (``koudai``), so a host with its own
Flask-Babel keeps its catalogs and its locale selector, and ours follow its locale. A host
without Flask-Babel gets one set up here, choosing the buyer's language from ``?lang=``,
then the session, then the browser, then ``KOUDAI_DEFAULT_LOCALE``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from babel import Locale
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import Babel, Domain, get_locale
from markupsafe import Markup
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from koudai_flask.connectors.logistics.carriers import CARRIERS as CARRIER_TABLE

LOCALES = ("zh_CN", "en")
LOCALE_SESSION_KEY = "koudai_locale"
TRANSLATIONS = os.path.join(os.path.dirname(__file__), "translations")

domain = Domain(translation_directories=TRANSLATIONS, domain="koudai")
gettext = domain.gettext
ngettext = domain.ngettext
lazy_gettext = domain.lazy_gettext


# Parsed once: Flask-Babel parses a string from the selector on every request, and
# babel's Locale.parse scans the whole list of known locales each time.
_PARSED = {code: Locale.parse(code) for code in LOCALES}


def select_locale() -> Locale:
    return _PARSED[_select_locale()]


def _select_locale() -> str:
    if not has_request_context():
        return str(current_app.config["KOUDAI_DEFAULT_LOCALE"])
    asked = request.args.get("lang") if request.query_string else None
    if asked in LOCALES:
        if session.get(LOCALE_SESSION_KEY) != asked:  # no cookie to send when it is the same
            session[LOCALE_SESSION_KEY] = asked
        return str(asked)
    chosen = session.get(LOCALE_SESSION_KEY)
    if chosen in LOCALES:
        return str(chosen)
    best = _browser_language(request.headers.get("Accept-Language"))
    return best or str(current_app.config["KOUDAI_DEFAULT_LOCALE"])


@functools.lru_cache(maxsize=512)
def _browser_language(header: str | None) -> str | None:
    """Our locale for an Accept-Language header; browsers send few distinct ones."""
    best = parse_accept_header(header, LanguageAccept).best_match(["zh-CN", "zh", "en"])
    if best is None:
        return None
    return "en" if best == "en" else "zh_CN"


class BoundCatalog(NamedTuple):
    """One render's catalog, with ``_k`` and ``_kn`` bound to it."""

    catalog: Any
    gettext: Callable[..., str]
    ngettext: Callable[..., str]


def bound_catalog() -> BoundCatalog:
    """``_k`` and ``_kn`` with one render's catalog looked up once, not once per string.

    Flask-Babel's ``gettext`` finds the locale and the catalog again for every string (a
    shop page has a few dozen); a page's context gets these bound ones instead, as plain
    functions, the cheapest thing for Jinja to call. Macros imported without context keep
    the global ``_k``, which gives the same text.
    """
    catalog = domain.get_translations()
    lookup, plural_lookup = catalog.ugettext, catalog.ungettext

    def bound_k(string: str, **variables: Any) -> str:
        text: str = lookup(string)
        return text % variables if variables else text

    def bound_kn(singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        text: str = plural_lookup(singular, plural, num)
        return text % variables

    return BoundCatalog(catalog, bound_k, bound_kn)


def init_app(app: Flask) -> None:
    if "babel" not in app.extensions:
        app.config.setdefault("BABEL_DEFAULT_LOCALE", app.config["KOUDAI_DEFAULT_LOCALE"])
        Babel(app, locale_selector=select_locale)
    app.add_template_global(gettext, "_k")
    app.add_template_global(ngettext, "_kn")
    app.add_template_filter(format_datetime, "kd_datetime")
    app.add_template_global(current_language, "koudai_language")
    app.add_template_global(status_label, "status_label")
    app.add_template_global(carrier_label, "carrier_label")


def current_language() -> str:
    locale = get_locale()
    return "zh-CN" if locale is None or str(locale).startswith("zh") else "en"


def format_datetime(value: datetime | None) -> Markup | str:
    """A UTC datetime shown in the shop's zone as 2026-11-25 18:04."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(current_app.config["KOUDAI_TIMEZONE"]))
    return Markup(f'<time datetime="{value.isoformat()}">{local:%Y-%m-%d %H:%M}</time>')


STATUS_LABELS = {
    "pending_payment": lazy_gettext("Awaiting payment"),
    "paid": lazy_gettext("Paid"),
    "shipped": lazy_gettext("Shipped"),
    "delivered": lazy_gettext("Delivered"),
    "completed": lazy_gettext("Completed"),
    "cancelled": lazy_gettext("Cancelled"),
    "refunding": lazy_gettext("Refund requested"),
    "refunded": lazy_gettext("Refunded"),
    # Not states: timeline entries of changes that keep the state (OrderEvent.step).
    "partially_refunded": lazy_gettext("Partly refunded"),
    "partially_shipped": lazy_gettext("Partly shipped"),
    "return_agreed": lazy_gettext("Return agreed"),
    "return_sent": lazy_gettext("Goods sent back"),
    "return_arrived": lazy_gettext("Returned goods arrived"),
    "address_changed": lazy_gettext("Address changed"),
    # Not an order's: the buyer message of a back-in-stock alert is labelled by it.
    "back_in_stock": lazy_gettext("Back in stock"),
    # Not a state: the buyer message of a declined refund request is labelled by it.
    "refund_declined": lazy_gettext("Refund declined"),
}

# Kuaidi100 carrier codes and the names buyers know them by, from the one carrier table.
CARRIERS = {code: (row.name_zh, row.name_en) for code, row in CARRIER_TABLE.items()}


def status_label(status: str) -> str:
    label = STATUS_LABELS.get(status)
    return str(label) if label is not None else status


# Staff permissions and built-in roles as the back office names them.
PERMISSION_LABELS = {
    "orders.view": lazy_gettext("See orders"),
    "orders.ship": lazy_gettext("Ship orders"),
    "orders.cancel": lazy_gettext("Cancel orders"),
    "orders.refund": lazy_gettext("Refund orders"),
    "orders.mark_paid": lazy_gettext("Mark orders paid"),
    "orders.export": lazy_gettext("Export orders"),
    "orders.edit": lazy_gettext("Change unshipped orders' addresses"),
    "catalog.edit": lazy_gettext("Edit products"),
    "stock.adjust": lazy_gettext("See and adjust stock"),
    "customers.view": lazy_gettext("See customers"),
    "customers.edit": lazy_gettext("Edit customers"),
    "customers.export": lazy_gettext("Export customers"),
    "marketing.manage": lazy_gettext("Marketing and buyer messages"),
    "channels.view": lazy_gettext("See sales channels and their sync"),
    "channels.manage": lazy_gettext("Manage sales channels"),
    "staff.manage": lazy_gettext("Manage staff"),
    "audit.view": lazy_gettext("Read the audit log"),
}
ROLE_LABELS = {
    "owner": lazy_gettext("Owner"),
    "admin": lazy_gettext("Administrator"),
    "customer_service": lazy_gettext("Customer service"),
    "warehouse": lazy_gettext("Warehouse"),
    "marketing": lazy_gettext("Marketing"),
    "viewer": lazy_gettext("Viewer"),
}


def role_label(name: str) -> str:
    label = ROLE_LABELS.get(name)
    return str(label) if label is not None else name


def carrier_label(code: str) -> str:
    names = CARRIERS.get(code)
    if names is None:
        return code
    return names[0] if current_language() == "zh-CN" else names[1]
