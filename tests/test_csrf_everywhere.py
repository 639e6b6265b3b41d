"""Every form that changes something, in the back office and the shop, refuses a POST
without its CSRF token: a new form cannot forget the check without this test failing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Order, OrderEvent, OutboxEvent, StockMovement
from tests.helpers import fresh_sqlite_url
from tests.test_admin import build, login

# Views that answer before they read the form, changing nothing: the object named in the
# URL is not there (404), or there is nothing to act on (an empty cart goes back, 302).
ANSWER_FIRST = {
    "koudai_admin.coupon_edit": 404,
    "koudai_admin.batch_edit": 404,
    "koudai_admin.promotion_edit": 404,
    "koudai_admin.limited_price_edit": 404,
    "koudai_admin.shipping_edit": 404,
    "koudai_admin.message_template_edit": 404,
    "koudai_shop.checkout_page": 302,
    "koudai_shop.pay": 404,  # the signed-in staff member is no buyer of this order
    "koudai_shop.cancel": 404,
    "koudai_shop.confirm_received": 404,
    "koudai_shop.request_refund": 404,
    "koudai_shop.buy_again": 404,
    "koudai_shop.send_back": 404,
    "koudai_shop.withdraw_refund": 404,
    "koudai_shop.order_address_edit": 404,
    # No buyer is signed in (staff are): sent to log in. test_address_book posts without
    # the token as the buyer.
    "koudai_shop.address_add": 302,
    "koudai_shop.address_edit": 302,
    "koudai_shop.address_default": 302,
    "koudai_shop.address_delete": 302,
    # A back-in-stock alert names its SKU first (none here: 404), then wants a buyer;
    # test_stock_alerts posts without the token as the buyer.
    "koudai_shop.alert_add": 404,
    "koudai_shop.alert_delete": 302,
    # A review is written by the order's buyer: staff are sent to log in as one.
    # test_reviews posts without the token as the buyer.
    "koudai_shop.review_write": 302,
    # Keeping a favourite names its product first (none here: 404); both want a buyer (a
    # staff member is sent to log in as one). test_favourites posts without the token as
    # the buyer.
    "koudai_shop.favourite_add": 404,
    "koudai_shop.favourite_delete": 302,
}


@pytest.fixture
def sqlite_url(tmp_path: Any, sqlite_template: Any) -> str:
    return fresh_sqlite_url(sqlite_template, tmp_path, "csrf.db")


def state(app: Any) -> tuple[int, ...]:
    with app.app_context():
        session = get_state().session
        return tuple(
            int(session.scalar(select(func.count()).select_from(model)))
            for model in (AuditEntry, Order, OrderEvent, OutboxEvent, StockMovement)
        )


def test_every_post_of_the_back_office_and_the_shop_needs_its_csrf_token(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    client = login(app, "owner")
    before = state(app)
    checked = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or not rule.endpoint.startswith(
            ("koudai_admin.", "koudai_shop.")
        ):
            continue
        path = rule.rule.replace("<number>", numbers["web"]).replace("<name>", "tb-a")
        path = re.sub(r"<[^>]+>", "1", path)
        answer = client.post(path, data={"note": "x", "quantity": "1"})
        expected = ANSWER_FIRST.get(rule.endpoint, 400)
        assert answer.status_code == expected, (rule.endpoint, answer.status_code)
        checked.append(rule.endpoint)
    assert len(checked) > 90  # the sweep saw the forms, not an empty map
    assert "koudai_admin.job_discard" in checked and "koudai_shop.cart_add" in checked
    assert state(app) == before
