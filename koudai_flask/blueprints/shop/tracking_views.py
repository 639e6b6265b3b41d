"""Campaign links and the shop's funnel steps.

``/r/<token>`` is a campaign's tracked link: it checks the signature, records
``push_clicked``, remembers the campaign in the buyer's session (first-party; it counts
for ``KOUDAI_FUNNEL_ATTRIBUTION_MAX_AGE``) and redirects into the shop. Later steps of
that session (``visit``, ``product_viewed``, ``cart_added``, ``checkout_started``,
``order_placed``) carry the campaign.

Page steps are recorded after the response is made (:func:`record_page_steps`); the views
that change something call :func:`step` or :func:`order_placed` where they succeed. All
of it only appends to the process's event buffer (``services.funnel``).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Blueprint, Response, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from koudai_flask import identity
from koudai_flask.errors import SignatureError, ValidationError
from koudai_flask.services import campaigns, funnel

ATTRIBUTION_KEY = "koudai_campaign"  # [campaign id, customer id, clicked at (unix time)]
VISITOR_KEY = "koudai_visitor"
VISIT_KEY = "koudai_visit_day"
# GET pages whose 200 answer is a funnel step.
PAGE_STEPS = {"product": "product_viewed", "checkout_page": "checkout_started"}


def attribution() -> tuple[int, int] | None:
    """(campaign id, customer id of the link) while the last click still counts."""
    value = session.get(ATTRIBUTION_KEY)
    if not value:
        return None
    campaign_id, customer_id, clicked = value
    if time.time() - clicked > current_app.config["KOUDAI_FUNNEL_ATTRIBUTION_MAX_AGE"]:
        return None
    return int(campaign_id), int(customer_id)


def _who(attributed: tuple[int, int] | None) -> tuple[int | None, str]:
    """(customer id, visitor key) of this request: the buyer, the link's customer, or the
    anonymous visitor id of the session."""
    customer = identity.current_customer()
    if customer is not None:
        return customer.id, f"c{customer.id}"
    if attributed is not None:
        return attributed[1], f"c{attributed[1]}"
    visitor = session.get(VISITOR_KEY)
    return None, f"v{visitor}" if visitor else ""


def step(event: str, *, ref: str = "", amount: int = 0, dedupe_key: str | None = None) -> None:
    """Record one funnel step of this request (buffered)."""
    config = current_app.config
    if not config["KOUDAI_FUNNEL_EVENTS"]:
        return
    attributed = attribution()
    customer_id, visitor = _who(attributed)
    funnel.buffer().add(
        funnel.event_row(
            event,
            campaign_id=attributed[0] if attributed else None,
            customer_id=customer_id,
            visitor=visitor,
            ref=ref,
            amount=amount,
            dedupe_key=dedupe_key,
        )
    )


def order_placed(order: Any) -> None:
    """The checkout placed ``order``: its step, and its campaign for when it is paid."""
    if not current_app.config["KOUDAI_FUNNEL_EVENTS"]:
        return
    attributed = attribution()
    if attributed is not None:
        customer_id, visitor = _who(attributed)
        funnel.attribute_order(
            order.number,
            campaign_id=attributed[0],
            customer_id=order.customer_id or customer_id,
            visitor=visitor,
        )
    step(
        "order_placed",
        ref=order.number,
        amount=int(order.total),
        dedupe_key=f"order_placed:{order.number}",
    )


def record_page_steps(response: Response) -> Response:
    """After a shop page: the day's first visit, and the page's own step."""
    if not current_app.config["KOUDAI_FUNNEL_EVENTS"] or request.method != "GET":
        return response
    if response.status_code != 200 or response.mimetype != "text/html":
        return response
    today = time.strftime("%Y-%m-%d", time.gmtime())
    if session.get(VISIT_KEY) != today:
        if VISITOR_KEY not in session:
            session[VISITOR_KEY] = secrets.token_hex(8)
        session[VISIT_KEY] = today
        step("visit", ref=request.path[:64])
    endpoint = request.endpoint or ""
    event = PAGE_STEPS.get(endpoint[endpoint.rfind(".") + 1 :])
    if event is not None:
        step(event, ref=str((request.view_args or {}).get("slug", ""))[:64])
    return response


def register(bp: Blueprint) -> None:
    @bp.get("/r/<token>")
    def campaign_link(token: str) -> ResponseReturnValue:
        home = url_for(".index")
        try:
            link = campaigns.read_link(token)
        except (SignatureError, ValidationError):
            return redirect(home, 302)  # a mangled link still lands in the shop
        if link is None:  # genuine but old: no longer counted
            return redirect(home, 302)
        session[ATTRIBUTION_KEY] = [link.campaign_id, link.customer_id, int(time.time())]
        session.pop(VISIT_KEY, None)  # the landing page counts as this campaign's visit
        step("push_clicked", ref=str(link.campaign_id))
        return redirect(home.rstrip("/") + link.target, 302)

    bp.after_request(record_page_steps)
    bp.teardown_request(funnel.flush_if_due)
