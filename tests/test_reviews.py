"""Buyer reviews (评价): written from the buyer's own order once it arrived, one per item,
shown on the product's pages with the average, hidden and answered by staff; refused in
Chinese with nothing written; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Product, ProductReview
from koudai_flask.services import catalog, channels, order_states, orders, reviews, staff, webhooks
from koudai_flask.services.transaction import unit_of_work
from tests.api_support import API, make_key
from tests.test_campaigns import PASSWORD, login
from tests.test_notifications import SmtpServer, mail_settings
from tests.test_stock_alerts import sign_up
from tests.test_webhooks import SECRET, receiver

__all__ = ["receiver"]  # the webhook receiver fixture

SLUG = "longjing"


def order_for(customer_id: int, *, arrived: bool = True) -> tuple[str, list[int]]:
    """A shop order of both teas for the buyer, paid (and delivered); its number and lines."""
    order = orders.place(
        channel="web",
        lines=[{"sku": "LJ-S", "quantity": 2}, {"sku": "LJ-L", "quantity": 1}],
        customer=customer_id,
        address={"name": "李雷", "phone": "13800138000", "street": "文三路 90 号"},
    )
    number = order.number
    orders.mark_paid(number, amount=order.total, transaction_id=f"t-{number}", provider="offline")
    if arrived:
        orders.ship(number, carrier="shunfeng", tracking_number=f"SF{number[-8:]}")
        orders.deliver(number)
    with unit_of_work() as session:
        return number, [line.id for line in order_states.get_order(session, number).lines]


def figures(app: Flask) -> tuple[int, int, int]:
    """(published review count, star total) of the tea, and review rows."""
    with app.app_context():
        session = get_state().session
        session.expire_all()
        product = session.scalar(select(Product).where(Product.slug == SLUG))
        rows = session.scalar(select(func.count()).select_from(ProductReview))
        return product.review_count, product.rating_total, int(rows or 0)


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, Any, int, str, list[int]]:
    return tea_shop(make_app(database_url))


def tea_shop(app: Flask) -> tuple[Flask, Any, int, str, list[int]]:
    """The tea in two sizes, customer service and a viewer, a buyer with a delivered order."""
    with app.app_context():
        catalog.create_product(
            title="龙井茶",
            slug=SLUG,
            options=["size"],
            skus=[
                {"code": "LJ-S", "price": 8800, "attributes": {"size": "小罐"}, "stock": 20},
                {"code": "LJ-L", "price": 16800, "attributes": {"size": "大罐"}, "stock": 20},
            ],
        )
        staff.grant("staff:cs@shop.cn", "customer_service", email="cs@shop.cn", password=PASSWORD)
        staff.grant("staff:mkt@shop.cn", "viewer", email="mkt@shop.cn", password=PASSWORD)
    client, customer_id = sign_up(app, phone="13800138000")
    with app.app_context():
        number, lines = order_for(customer_id)
    return app, client, customer_id, number, lines


def test_a_buyer_reviews_each_item_once_and_the_product_shows_the_average(shop):
    app, client, _, number, lines = shop
    page = client.text(f"/orders/{number}")
    assert page.count('class="kd-review-link"') == 2
    form = client.get(f"/orders/{number}/review/{lines[0]}")
    assert form.status_code == 200 and 'name="rating"' in form.get_data(as_text=True)
    done = client.post(f"/orders/{number}/review/{lines[0]}", {"rating": "5", "body": " 香！ "})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/orders/{number}")
    client.post(f"/orders/{number}/review/{lines[1]}", {"rating": "2", "body": ""})
    assert figures(app) == (2, 7, 2)

    after = client.text(f"/orders/{number}")
    assert "kd-review-link" not in after and after.count('class="kd-muted kd-reviewed"') == 2
    product = client.text(f"/products/{SLUG}")
    assert re.search(r'id="review-summary">.*3\.5 分（满分 5 分），2 条评价', product)
    listed = client.text(f"/products/{SLUG}/reviews")
    assert re.findall(r'data-rating="(\d)"', listed) == ["2", "5"]  # newest first
    assert "香！" in listed and "李*" in listed and "13800138000" not in listed
    assert "小罐" in listed and "大罐" in listed

    again = client.post(f"/orders/{number}/review/{lines[0]}", {"rating": "1"})
    assert again.status_code == 303  # the form is gone: back to the order, nothing written
    with app.app_context(), pytest.raises(ValidationError) as refused:
        reviews.write(shop[2], number, lines[0], 1, "")
    assert refused.value.reason == "review_exists"
    assert figures(app) == (2, 7, 2)


@pytest.mark.parametrize(
    ("rating", "body", "words"),
    [
        ("0", "", "请选择一到五星。"),
        ("six", "", "请选择一到五星。"),
        ("4", "好" * 501, "评价最多 500 个字。"),
    ],
)
def test_a_bad_review_is_refused_in_chinese_and_writes_nothing(shop, rating, body, words):
    app, client, _, number, lines = shop
    refused = client.post(f"/orders/{number}/review/{lines[0]}", {"rating": rating, "body": body})
    assert refused.status_code == 400
    assert words in refused.get_data(as_text=True)
    assert figures(app) == (0, 0, 0)


def test_only_the_buyer_reviews_and_only_what_arrived(shop):
    app, client, customer_id, number, lines = shop
    with app.app_context():
        unshipped, unshipped_lines = order_for(customer_id, arrived=False)
    page = client.text(f"/orders/{unshipped}")
    assert "kd-review-link" not in page
    early = client.post(f"/orders/{unshipped}/review/{unshipped_lines[0]}", {"rating": "5"})
    assert early.status_code == 303  # no form before it arrives
    with app.app_context(), pytest.raises(ValidationError) as refused:
        reviews.write(customer_id, unshipped, unshipped_lines[0], 5, "")
    assert refused.value.reason == "review_not_received"

    other, _ = sign_up(app, email="other@example.com")
    assert other.get(f"/orders/{number}/review/{lines[0]}").status_code == 404
    assert other.post(f"/orders/{number}/review/{lines[0]}", {"rating": "1"}).status_code == 404
    assert (
        client.post(f"/orders/{number}/review/{unshipped_lines[0]}", {"rating": "1"}).status_code
        == 404
    )
    with app.app_context(), pytest.raises(NotFound):
        reviews.write(customer_id + 1, number, lines[0], 1, "")
    no_token = client.post(f"/orders/{number}/review/{lines[0]}", {"rating": "5"}, token=False)
    assert no_token.status_code == 400
    assert figures(app) == (0, 0, 0)


def test_staff_hide_show_and_reply_and_the_average_follows(shop):
    app, client, _, number, lines = shop
    client.post(f"/orders/{number}/review/{lines[0]}", {"rating": "1", "body": "太苦"})
    client.post(f"/orders/{number}/review/{lines[1]}", {"rating": "5"})
    with app.app_context():
        low_id = get_state().session.scalar(
            select(ProductReview.id).where(ProductReview.rating == 1)
        )
    agent = login(app, "cs@shop.cn")
    listed = agent.get("/shop-admin/reviews?low=1").get_data(as_text=True)
    assert re.findall(r'data-id="(\d+)" data-status="published"', listed) == [str(low_id)]
    assert 'href="/shop-admin/reviews"' in listed  # in the menu

    back = "/shop-admin/reviews?low=1"
    hidden = agent.post(
        f"/shop-admin/reviews/{low_id}/status",
        data={"csrf_token": agent.csrf, "status": "hidden", "back": back},
    )
    assert hidden.status_code == 303 and hidden.headers["Location"] == back
    assert figures(app) == (1, 5, 2)
    assert "太苦" not in client.text(f"/products/{SLUG}/reviews")
    replied = agent.post(
        f"/shop-admin/reviews/{low_id}/reply",
        data={
            "csrf_token": agent.csrf,
            "reply": "抱歉，已为您补寄一罐。",
            "back": "https://evil.example/",
        },
    )
    assert replied.headers["Location"] == "/shop-admin/reviews"  # never elsewhere
    agent.post(
        f"/shop-admin/reviews/{low_id}/status",
        data={"csrf_token": agent.csrf, "status": "published"},
    )
    assert figures(app) == (2, 6, 2)
    shown = client.text(f"/products/{SLUG}/reviews")
    assert "太苦" in shown and "掌柜回复： 抱歉，已为您补寄一罐。" in re.sub(r"<[^>]+>", "", shown)
    with app.app_context():
        actions = (
            get_state()
            .session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("review.%")))
            .all()
        )
    assert sorted(actions) == ["review.reply", "review.status", "review.status"]

    viewer = login(app, "mkt@shop.cn")  # sees the reviews, may not change them
    page = viewer.get("/shop-admin/reviews").get_data(as_text=True)
    assert "太苦" in page and "/status" not in page
    refused = viewer.post(
        f"/shop-admin/reviews/{low_id}/status",
        data={"csrf_token": viewer.csrf, "status": "hidden"},
    )
    assert refused.status_code == 403 and figures(app) == (2, 6, 2)
    too_long = agent.post(
        f"/shop-admin/reviews/{low_id}/reply",
        data={"csrf_token": agent.csrf, "reply": "长" * 501},
        follow_redirects=True,
    )
    assert "评价最多 500 个字。" in too_long.get_data(as_text=True)


def test_a_low_review_is_mailed_to_who_answers_reviews_and_every_review_is_a_webhook(
    make_app, database_url, receiver
):
    smtp = SmtpServer()
    try:
        app = make_app(
            database_url,
            KOUDAI_MAIL=mail_settings(smtp),
            SERVER_NAME="shop.example.com",
            KOUDAI_WEBHOOKS=True,
            KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True,
        )
        _, client, customer_id, number, lines = tea_shop(app)
        with app.app_context():
            channels.create("taobao", "tb-a", settings={})
            staff.grant("staff:wh@shop.cn", "warehouse", email="wh@shop.cn", password=PASSWORD)
            staff.grant(
                "staff:tb@shop.cn",
                "customer_service",
                channels=["tb-a"],
                email="tb@shop.cn",
                password=PASSWORD,
            )
            webhooks.create_subscription(
                receiver.url, ["review.created"], owner_user_id="staff:cs@shop.cn", secret=SECRET
            )
        before = len(smtp.state.received)
        client.post(f"/orders/{number}/review/{lines[0]}", {"rating": "5", "body": "好喝"})
        assert len(smtp.state.received) == before  # a good review troubles nobody
        client.post(f"/orders/{number}/review/{lines[1]}", {"rating": "1", "body": "罐子破了"})
        mails = smtp.state.received[before:]
        assert [mail.rcpt_tos for mail in mails] == [["cs@shop.cn"]]  # not the warehouse
        message = mails[0].message
        assert message["Subject"] == "★ 差评：龙井茶"
        body = message.get_body(("plain",)).get_content()
        assert f"买家给 龙井茶 大罐 打了 ★（订单 {number}）。" in body and "罐子破了" in body
        assert "http://shop.example.com/shop-admin/reviews?low=1" in body

        events = [
            (r.headers["Koudai-Webhook-Event"], r.document["data"]) for r in receiver.received
        ]
        assert [name for name, _ in events] == ["review.created", "review.created"]
        assert {k: events[1][1][k] for k in ("rating", "number", "sku", "body", "author")} == {
            "rating": 1,
            "number": number,
            "sku": "LJ-L",
            "body": "罐子破了",
            "author": "李*",
        }
        assert events[1][1]["customer_id"] == customer_id
    finally:
        smtp.stop()


def test_the_api_lists_answers_and_hides_reviews_within_the_keys_channels(shop):
    app, client, _, number, lines = shop
    client.post(f"/orders/{number}/review/{lines[0]}", {"rating": "5", "body": "香"})
    client.post(f"/orders/{number}/review/{lines[1]}", {"rating": "2", "body": "罐子小"})
    with app.app_context():
        channels.create("taobao", "tb-a", settings={})
    api = app.test_client()
    reader = make_key(app, ["customers.view"], owner="staff:cs@shop.cn")
    editor = make_key(app, ["customers.view", "customers.edit"], owner="staff:cs@shop.cn")
    marketplace = make_key(app, ["customers.view"], channels=["tb-a"], owner="staff:cs@shop.cn")

    with app.app_context():
        product_id = get_state().session.scalar(select(Product.id).where(Product.slug == SLUG))
    product = api.get(f"{API}/products/{product_id}", headers=reader).get_json()
    assert (product["review_count"], product["rating"]) == (2, 3.5)
    page = api.get(f"{API}/reviews?limit=1", headers=reader).get_json()
    assert [(r["sku"], r["rating"], r["number"]) for r in page["items"]] == [("LJ-L", 2, number)]
    rest = api.get(f"{API}/reviews?cursor={page['next_cursor']}", headers=reader).get_json()
    assert [r["sku"] for r in rest["items"]] == ["LJ-S"] and rest["next_cursor"] is None
    low = api.get(f"{API}/reviews?rating_max=2", headers=reader).get_json()["items"]
    assert [r["body"] for r in low] == ["罐子小"]
    low_id = low[0]["id"]
    assert api.get(f"{API}/reviews", headers=marketplace).get_json()["items"] == []
    assert api.get(f"{API}/reviews/{low_id}", headers=marketplace).status_code == 404

    replied = api.put(f"{API}/reviews/{low_id}/reply", json={"reply": "已补寄"}, headers=editor)
    assert replied.status_code == 200 and replied.get_json()["reply"] == "已补寄"
    hidden = api.put(f"{API}/reviews/{low_id}/status", json={"status": "hidden"}, headers=editor)
    assert hidden.get_json()["status"] == "hidden" and figures(app) == (1, 5, 2)
    product = api.get(f"{API}/products/{product_id}", headers=reader).get_json()
    assert (product["review_count"], product["rating"]) == (1, 5.0)
    assert (
        api.put(
            f"{API}/reviews/{low_id}/status", json={"status": "gone"}, headers=editor
        ).status_code
        == 422
    )
    assert (
        api.put(
            f"{API}/reviews/{low_id}/reply", json={"reply": "长" * 501}, headers=editor
        ).status_code
        == 422
    )
    assert (
        api.put(
            f"{API}/reviews/{low_id}/status", json={"status": "published"}, headers=reader
        ).status_code
        == 403
    )
    assert figures(app) == (1, 5, 2)
