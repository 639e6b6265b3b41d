"""Staff told of what waits on them: a buyer's refund request, and a return on its way, by
e-mail.

The dashboard counts refund requests, but a seller who is not looking leaves the buyer
waiting, and the order can be neither shipped nor completed meanwhile. With ``KOUDAI_MAIL``
set, every active staff member who may answer the request (``orders.refund`` on the order's
channel) and has an e-mail address gets one message per request: the order, what the buyer
said, and a link to the order in the back office; when the buyer posts the goods of a
return, its carrier and waybill; and when that parcel is signed for, that it is there. A
request made on a marketplace is not sent: the marketplace tells the seller itself, and is
where it is answered.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from koudai_flask.i18n import carrier_label
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.jobs.dispatch import enqueue
from koudai_flask.models import Order, OrderEvent, StaffMember
from koudai_flask.notifications.email import mailer_from_config
from koudai_flask.notifications.render import yuan
from koudai_flask.services import order_states, returns, staff
from koudai_flask.services.checkout import SHOP_CHANNEL
from koudai_flask.services.transaction import unit_of_work

log = logging.getLogger("koudai_flask.notifications")


def on_refund_requested(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler of ``order.refunding``: one e-mail job per staff member to tell."""
    if not current_app.config["KOUDAI_MAIL"]:
        return
    with unit_of_work() as session:
        order = order_states.get_order(session, payload["number"])
        asked = order_states.refund_request(session, order)
        if asked is None or asked.actor != "buyer":
            return  # staff on the way to a refund, or a marketplace: nobody to tell
        subject = _k("Refund requested: order %(number)s", number=order.number)
        text = "\n\n".join(
            [
                _k(
                    "The buyer asks for a refund of order %(number)s (%(total)s): %(reason)s",
                    number=order.number,
                    total=yuan(order.total),
                    reason=asked.note,
                ),
                *_asked(order, asked),
                _k("Refund it or decline it with a reason: %(url)s", url=_admin_url(order.number)),
            ]
        )
        members, key = _who_answers(session, order), f"staff-alert-{asked.id}"
    _send_each(members, subject, text, key)


# What staff are told of a return parcel, by outbox topic: subject, what happened, what to
# do, and the job key's prefix (one message per parcel and topic).
_RETURN_MESSAGES = {
    "order.return_sent": (
        _l("Goods coming back: order %(number)s"),
        _l(
            "The buyer sent the goods of order %(number)s back by %(carrier)s, "
            "waybill %(tracking_number)s."
        ),
        _l("Refund once they arrive: %(url)s"),
        "staff-return",
    ),
    "order.return_arrived": (
        _l("Returned goods arrived: order %(number)s"),
        _l(
            "The goods of order %(number)s sent back by %(carrier)s, waybill "
            "%(tracking_number)s, were signed for."
        ),
        _l("Check them and refund: %(url)s"),
        "staff-returned",
    ),
}


def on_return(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler of ``order.return_sent`` and ``order.return_arrived``: staff who refund
    are told a parcel comes back (by which carrier and waybill, so they know what to look out
    for), and when it was signed for (check the goods and refund: the buyer waits on them)."""
    if not current_app.config["KOUDAI_MAIL"]:
        return
    subject, happened, to_do, prefix = _RETURN_MESSAGES[topic]
    with unit_of_work() as session:
        order = order_states.get_order(session, payload["number"])
        waybill = returns.return_waybill(order)
        if waybill is None or waybill["tracking_number"] != payload["tracking_number"]:
            return  # the request ended, or the buyer corrected the waybill, meanwhile
        figures = {
            "number": order.number,
            "carrier": carrier_label(waybill["carrier"]),
            "tracking_number": waybill["tracking_number"],
            "url": _admin_url(order.number),
        }
        text = "\n\n".join([str(happened) % figures, str(to_do) % figures])
        members = _who_answers(session, order)
        key = f"{prefix}-{order.id}-{waybill['tracking_number']}"
    _send_each(members, str(subject) % figures, text, key)


LOW_RATING = 2  # stars at most: a review staff hear of (差评)


def on_low_review(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler of ``review.created``: a review of one or two stars is e-mailed to
    the staff who answer reviews (``customers.edit`` on the own shop), with what the buyer
    wrote and a link to the low reviews, so a reply or a call comes while it still helps."""
    if not current_app.config["KOUDAI_MAIL"] or payload["rating"] > LOW_RATING:
        return
    figures = {
        "stars": "★" * payload["rating"],
        "product": payload["product"],
        "variant": payload["variant"],
        "number": payload["number"],
    }
    subject = _k("%(stars)s review: %(product)s", **figures)
    text = "\n\n".join(
        [
            _k("A buyer gave %(product)s %(variant)s %(stars)s (order %(number)s).", **figures),
            payload["body"] or _k("(no words)"),
            _k("Reply to it, or hide it: %(url)s", url=_reviews_url()),
        ]
    )
    with unit_of_work() as session:
        members = [
            member.id
            for member in session.scalars(
                select(StaffMember)
                .where(StaffMember.active.is_(True), StaffMember.email.is_not(None))
                .order_by(StaffMember.id)
            )
            if staff.allows(member, "customers.edit", channel=SHOP_CHANNEL)
        ]
    _send_each(members, subject, text, f"staff-review-{payload['id']}")


def _reviews_url() -> str:
    try:
        return url_for("koudai_admin.reviews_list", low="1", _external=True)
    except (RuntimeError, BuildError):
        return "/reviews?low=1"


def _who_answers(session: Session, order: Order) -> list[int]:
    """Active staff members with an address who may refund ``order`` (on its channel)."""
    return [
        member.id
        for member in session.scalars(
            select(StaffMember)
            .where(StaffMember.active.is_(True), StaffMember.email.is_not(None))
            .order_by(StaffMember.id)
        )
        if staff.allows(member, "orders.refund", channel=order.channel)
    ]


def _send_each(members: list[int], subject: str, text: str, key: str) -> None:
    for member_id in members:
        try:
            enqueue(send, member_id, subject, text, job_id=f"{key}-{member_id}")
        except Exception as exc:  # one mailbox failing tells the others all the same
            log.warning("alert to staff member %s not sent: %s", member_id, exc)


def _asked(order: Order, asked: OrderEvent) -> list[str]:
    """The items the request names, and whether the goods come back, as lines of text."""
    said: list[str] = []
    if asked.asked_lines:
        titles = {line.sku_code: line.title for line in order.lines}
        items = ", ".join(
            f"{titles.get(code, code)} ({code}) × {units}"
            for code, units in asked.asked_lines.items()
        )
        said.append(_k("Items: %(items)s", items=items))
    if asked.returning:
        said.append(
            _k(
                "The buyer wants to send the goods back: agree to the return on the order, "
                "which tells them the return address, and refund when the goods arrive."
            )
        )
    return said


def send(member_id: int, subject: str, text: str) -> None:
    """Job: one alert to one staff member, if they still have an address."""
    with unit_of_work() as session:
        member = session.get(StaffMember, member_id)
        address = member.email if member is not None and member.active else None
    if address:
        mailer_from_config(current_app.config["KOUDAI_MAIL"]).send(address, subject, text)


def _admin_url(number: str) -> str:
    """The order in the back office, absolute (``SERVER_NAME`` outside a request), or its
    number alone when no URL can be built here."""
    try:
        return url_for("koudai_admin.order_detail", number=number, _external=True)
    except (RuntimeError, BuildError):
        return number
