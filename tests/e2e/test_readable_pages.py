"""Every page a buyer or the staff meet reads, whatever colour the owner picked.

The shop draws its buttons, prices and banner in the owner's colour (the set-up wizard's
colour picker). A mid red, a light yellow or a cyan must not leave white words on a pale
button or pale prices on the page: the theme derives a readable shade and the text on it
(``services.theme``), and this test reads each page in Chromium with ``readability.js``
(WCAG 2.1 AA contrast, labels, alt text, link words).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zxingcpp
from flask import Flask

from koudai_flask.connectors.sandbox.wechatpay import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.services import (
    api_keys,
    catalog,
    crm_profile,
    customers,
    order_states,
    orders,
    staff,
    tags,
    theme,
    webhooks,
)
from koudai_flask.services.marketing import coupon_admin
from tests.e2e.conftest import PAST_THE_SCREEN, buyer_login, sqlite_shop, staff_login

CHECK = (Path(__file__).parent / "readability.js").read_text()
# A slip's barcode drawn onto a canvas at its size on the page (twice as wide), as grey values.
DRAW_BARCODE = """async number => {
  const svg = document.querySelector(`.kd-slip[data-number="${number}"] svg.kd-barcode`);
  const box = svg.getBoundingClientRect();
  const image = new Image();
  image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg.outerHTML);
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(box.width * 2);
  canvas.height = Math.round(box.height);
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const grey = [];
  for (let i = 0; i < rgba.length; i += 4) grey.push(rgba[i]);
  return [canvas.width, canvas.height, grey];
}"""
PASSWORD = "correct-horse-battery"
BUYER = ("mei@buyers.cn", "buyer-pass-1")


@pytest.fixture
def served(make_app: Any, tmp_path: Path) -> Iterator[tuple[Flask, str, str]]:
    app = make_app(
        sqlite_shop(tmp_path, "readable.db"),
        KOUDAI_OFFLINE_PAYMENT=True,
        KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True,  # the webhook below points at this machine
    )
    with app.app_context():
        catalog.create_category("茶器 Teaware", "teaware")
        catalog.create_product(
            title="白瓷盖碗 Gaiwan",
            slug="gaiwan",
            category="teaware",
            featured=True,
            options=["size"],
            skus=[
                {"code": "GW-S", "price": 8800, "attributes": {"size": "S"}, "stock": 4},
                {"code": "GW-L", "price": 9800, "attributes": {"size": "L"}, "stock": 0},
            ],
        )
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        buyer = customers.register(password=BUYER[1], email=BUYER[0], name="韩梅梅")
        order = orders.place(channel="web", lines=[{"sku": "GW-S", "quantity": 1}], customer=buyer)
        orders.mark_paid(
            order.number,
            amount=order.total,
            transaction_id="4200002026112700001234567890",
            provider="offline",
        )
        number = order.number
    server = LoopbackServer(app)
    try:
        yield app, server.url, number
    finally:
        server.stop()


def problems(page: Any, url: str) -> list[str]:
    page.goto(url)
    return [f"{url}: {problem}" for problem in page.evaluate(CHECK)]


@pytest.mark.parametrize("colour", [None, "#e4393c", "#ffd400", "#00bcd4"])
def test_shop_and_back_office_pages_read_in_the_owners_colour(
    served: tuple[Flask, str, str], browser: Any, colour: str | None
) -> None:
    app, base, number = served
    if colour is not None:
        with app.app_context():
            theme.update(primary_color=colour)
    found: list[str] = []

    buyer = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    page = buyer.new_page()
    for path in ("/shop/", "/shop/c/teaware", "/shop/products/gaiwan", "/shop/products?q=茶"):
        found += problems(page, base + path)
    buyer_login(page, base, *BUYER)
    page.goto(f"{base}/shop/products/gaiwan")
    page.locator("#add-to-cart").click()
    page.wait_for_url("**/shop/cart")
    for path in ("/shop/cart", "/shop/checkout", "/shop/orders", f"/shop/orders/{number}"):
        found += problems(page, base + path)
    buyer.close()

    staff_side = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN")
    page = staff_side.new_page()
    staff_login(page, base, "owner@shop.cn", PASSWORD)
    page.wait_for_url("**/shop-admin/")
    for path in (
        "/",
        "/orders",
        f"/orders/{number}",
        "/products",
        "/stock",
        "/customers",
        "/marketing",
        "/funnel",
        "/staff",
        "/onboarding",
        "/orders/scan",
        "/stocktake?scan=GW-S",
    ):
        found += problems(page, f"{base}/shop-admin{path}")
    staff_side.close()
    assert not found, "\n".join(found)


def back_office_pages(page: Any, base: str, start: str) -> Iterator[str]:
    """Every back-office page linked from ``start`` and from the pages it links to (one
    address per view, HTML answers only), opened in ``page`` in turn; yields each path."""
    queue, seen = [start], set()
    while queue:
        path = queue.pop(0).split("#")[0]
        view = path.split("?")[0].rstrip("/").split("/")
        # One page per view: /orders/KD1 and /orders/KD2 are the same template.
        shape = tuple("*" if part[:1].isdigit() or part.startswith("KD") else part for part in view)
        if shape in seen or "logout" in path:
            continue
        seen.add(shape)
        answer = page.request.get(base + path)
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue  # a CSV export, a download
        page.goto(base + path)
        yield path
        links = page.evaluate(
            "() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"
        )
        queue += [link for link in links if link.startswith("/shop-admin")]


def test_the_back_office_fits_a_phone(served: tuple[Flask, str, str], browser: Any) -> None:
    """An owner on a phone: no back-office page scrolls sideways, nor a note holding a pasted
    300-character link; every table on every page linked from the dashboard is cards whose
    every cell is on the screen (no table to scroll inside), with the order list's rarer
    filters folded away."""
    app, base, number = served
    with app.app_context():
        buyer_id = order_states.get_order(get_state().session, number).customer_id
        crm_profile.add_note("staff:owner@shop.cn", buyer_id, "https://t.cn/" + "x" * 300)
        owner = "staff:owner@shop.cn"
        rules = coupon_admin.CouponRules(name="老客回馈 Thank-you", kind="fixed", value=1000)
        coupon_admin.create_coupon(owner, "THANKS-2013-CAMELLIA", rules)
        tags.add_tag(buyer_id, "老客 Regulars", actor_id=owner)
        webhooks.create_subscription(
            "http://127.0.0.1:9/koudai/orders/" + "a1b2c3d4" * 12,
            ["order.paid", "order.shipped"],
            owner_user_id=owner,
            description="仓库系统 warehouse system",
        )
        api_keys.create(owner, "打单软件 label printer", ["orders.view", "orders.ship"])
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    page = context.new_page()
    staff_login(page, base, "owner@shop.cn", PASSWORD)
    page.wait_for_url("**/shop-admin/")
    wide: list[str] = []
    opened: list[str] = []

    def look(path: str) -> None:
        opened.append(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 375:
            wide.append(f"{path}: {width}px")
        wide.extend(f"{path}: {problem}" for problem in page.evaluate(PAST_THE_SCREEN, 375))

    for path in back_office_pages(page, base, "/shop-admin/"):
        look(path)
    # Pages reached by a scan rather than a link.
    for path in (f"/orders/scan?number={number}", "/stocktake?scan=GW-S", "/stock/GW-S"):
        page.goto(f"{base}/shop-admin{path}")
        look(path)
    # The crawl reached the pages whose tables were wide before they became cards.
    for view in ("/audit", "/staff", "/messages", "/marketing", "/customers/tags", "/webhooks"):
        assert f"/shop-admin{view}" in opened, opened
    assert any(path.startswith("/shop-admin/products/") for path in opened), opened
    page.goto(f"{base}/shop-admin/orders/{number}")
    # The totals' names on one line each, the payment's long transaction id wrapping instead.
    tall = page.evaluate(
        """[...document.querySelectorAll('.kd-summary dt')].filter(dt => {
            const words = document.createRange();
            words.selectNodeContents(dt);
            return words.getClientRects().length > 1;  // one box per line of text
        }).map(dt => dt.textContent)"""
    )
    assert not tall, tall
    page.goto(f"{base}/shop-admin/orders")
    assert page.get_by_placeholder("买家").is_hidden()  # folded under 更多筛选
    named = page.evaluate(
        """number => [...document.querySelectorAll(`#orders tr[data-number="${number}"] td`)]
            .map(td => getComputedStyle(td, '::before').content)""",
        number,
    )
    assert '"买家 "' in named and '"实付款 "' in named, named  # each figure says what it is
    page.get_by_text("更多筛选").click()
    page.get_by_placeholder("买家").fill("nobody-like-this")
    page.get_by_role("button", name="筛选").click()
    assert page.get_by_placeholder("买家").is_visible()  # a filter in use stays in sight
    assert page.locator("#orders .kd-empty").is_visible()
    context.close()
    assert not wide, wide


def test_packing_slips_print_one_sheet_each(served: tuple[Flask, str, str], browser: Any) -> None:
    """The warehouse ticks an order and prints: a document of its own in a new tab, readable,
    whose pick list and slips each take a sheet of paper, without the screen's buttons."""
    _, base, number = served
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN")
    page = context.new_page()
    staff_login(page, base, "owner@shop.cn", PASSWORD)
    page.wait_for_url("**/shop-admin/")
    page.goto(f"{base}/shop-admin/orders")
    page.check(f'#orders input[name=numbers][value="{number}"]')
    with context.expect_page() as opened:
        page.get_by_role("button", name="打印所选订单的发货单").click()
    slips = opened.value
    slips.wait_for_load_state()
    assert slips.title().startswith("发货单")
    assert slips.locator(f'.kd-slip[data-number="{number}"]').is_visible()
    assert slips.get_by_role("button", name="打印").is_visible()  # shown once the script runs
    assert slips.evaluate(CHECK) == []
    # The barcode as Chromium draws it, read by an independent decoder.
    width, height, grey = slips.evaluate(DRAW_BARCODE, number)
    drawn = np.array(grey, dtype=np.uint8).reshape(height, width)
    assert [(found.text, found.format.name) for found in zxingcpp.read_barcodes(drawn)] == [
        (number, "Code128")
    ]
    slips.emulate_media(media="print")
    sheets = slips.evaluate(
        "[...document.querySelectorAll('.kd-sheet')].map(s => getComputedStyle(s).breakAfter)"
    )
    assert sheets == ["page", "auto"]  # the pick list, then the one slip
    assert slips.locator(".kd-print-bar").is_hidden()
    page.reload()
    assert "发货单已打印" in page.locator(f'#orders tr[data-number="{number}"]').inner_text()
    context.close()
