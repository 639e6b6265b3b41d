"""Shipping templates (运费模板): the fee of an order by the piece or by weight and by province,
provinces not delivered to, the back office's form, and checkout with them, on SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Order, Product, ShippingTemplate, Sku, StockLevel
from koudai_flask.services import catalog, customers, freight, shipping_templates, staff
from koudai_flask.services.freight import Goods, Rule
from tests.api_support import API, make_key
from tests.shop_client import CHECKOUT_TOKEN, ShopClient
from tests.test_admin import PASSWORD, login
from tests.test_refusals_said import said

OWNER = "staff:owner@shop.cn"
# ¥10 for the first piece, ¥5 each further; ¥20 and ¥10 to 新疆 and 西藏; nothing to 台湾.
BY_PIECE = {
    "name": "常规快递",
    "basis": "piece",
    "first": 1,
    "first_fee": 1000,
    "additional": 1,
    "additional_fee": 500,
    "areas": [
        {
            "provinces": ["新疆", "西藏"],
            "first": 1,
            "first_fee": 2000,
            "additional": 1,
            "additional_fee": 1000,
        }
    ],
    "excluded": ["台湾"],
}
# ¥12 for the first kilogram, ¥3 each further 500 g or part of it.
BY_WEIGHT = {
    "name": "按重量",
    "basis": "weight",
    "first": 1000,
    "first_fee": 1200,
    "additional": 500,
    "additional_fee": 300,
}


def text(response: Any) -> str:
    page = response.get_data(as_text=True)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_rule_charges_the_first_units_then_each_further_step_or_part_of_it() -> None:
    piece = Rule(first=1, first_fee=1000, additional=1, additional_fee=500)
    assert [piece.fee(n) for n in (1, 2, 3)] == [1000, 1500, 2000]
    weight = Rule(first=1000, first_fee=1200, additional=500, additional_fee=300)
    assert [weight.fee(g) for g in (0, 1000, 1001, 1500, 1501)] == [1200, 1200, 1500, 1500, 1800]


@given(
    first=st.integers(1, 5000),
    first_fee=st.integers(0, 10_000),
    additional=st.integers(1, 5000),
    additional_fee=st.integers(0, 10_000),
    units=st.integers(0, 50_000),
)
def test_each_further_step_adds_its_fee_and_never_less(
    first: int, first_fee: int, additional: int, additional_fee: int, units: int
) -> None:
    rule = Rule(first, first_fee, additional, additional_fee)
    assert rule.fee(units) >= first_fee
    assert rule.fee(units + 1) >= rule.fee(units)
    if units >= first:
        assert rule.fee(units + additional) == rule.fee(units) + additional_fee


@pytest.mark.parametrize(
    ("typed", "province"),
    [
        ("浙江省", "浙江"),
        ("内蒙古自治区", "内蒙古"),
        ("新疆维吾尔自治区", "新疆"),
        ("广西壮族自治区", "广西"),
        ("香港特别行政区", "香港"),
        (" 上海市 ", "上海"),
        ("Zhejiang", None),
        ("", None),
        (None, None),
    ],
)
def test_an_address_names_its_province_by_its_start(
    typed: str | None, province: str | None
) -> None:
    assert freight.province_of(typed) == province


def test_provinces_are_typed_with_any_separator_and_checked() -> None:
    assert freight.split_provinces("新疆维吾尔自治区、西藏, 青海，宁夏 西藏") == [
        "新疆",
        "西藏",
        "青海",
        "宁夏",
    ]
    with pytest.raises(Exception) as refused:
        freight.split_provinces("新疆、新僵")
    assert refused.value.reason == "unknown_province"  # type: ignore[attr-defined]
    assert refused.value.detail == {"name": "新僵"}  # type: ignore[attr-defined]


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    return tea_shop(make_app, database_url)


def tea_shop(make_app: Any, database_url: str) -> Flask:
    """Four tea things: two by the piece, one by weight, one at the flat ¥8.00."""
    app = make_app(database_url, KOUDAI_SHIPPING_FEE=800, KOUDAI_FREE_SHIPPING_OVER=None)
    with app.app_context():
        staff.grant(OWNER, "owner", email="owner@shop.cn", password=PASSWORD)
        staff.grant(
            "staff:warehouse@shop.cn", "warehouse", email="warehouse@shop.cn", password=PASSWORD
        )
        piece = shipping_templates.save_template(OWNER, None, BY_PIECE)
        weight = shipping_templates.save_template(OWNER, None, BY_WEIGHT)
        for title, code, template, grams in (
            ("茶杯 Cup", "CUP", piece, 200),
            ("茶壶 Pot", "POT", piece, 900),
            ("茶叶 Tea", "TEA", weight, 600),
            ("茶巾 Cloth", "CLOTH", None, 50),
        ):
            product = catalog.create_product(
                title=title,
                skus=[{"code": code, "price": 5000, "stock": 20, "weight_grams": grams}],
            )
            session = get_state().session
            session.get(Product, product.id).shipping_template_id = template and template.id
            session.commit()
    return app


def fee(app: Flask, province: str | None, **quantities: int) -> freight.Freight:
    with app.app_context():
        session = get_state().session
        ids = dict(session.execute(select(Sku.code, Sku.id)).all())
        goods = [Goods(ids[code], n, 5000 * n) for code, n in quantities.items()]
        return freight.quote(goods, province)


def test_the_fee_adds_up_each_templates_goods_by_province(shop: Flask) -> None:
    assert fee(shop, "浙江", CUP=3) == freight.Freight(2000, (), True)  # 10 + 2 × 5
    assert fee(shop, "浙江", CUP=2, POT=1).fee == 2000  # one template: three pieces
    assert fee(shop, "新疆", CUP=3).fee == 4000  # 20 + 2 × 10
    assert fee(shop, None, CUP=3).fee == 2000  # not known yet: the default figures
    assert fee(shop, "浙江", TEA=2).fee == 1200 + 300  # 1,200 g: 1 kg, then 500 g
    assert fee(shop, "浙江", TEA=3).fee == 1200 + 2 * 300  # 1,800 g
    assert fee(shop, "浙江", CLOTH=5).fee == 800  # no template: the flat fee, once
    # Three templates' goods in one order: each template's fee, and the flat fee once.
    assert fee(shop, "浙江", CUP=1, TEA=1, CLOTH=2).fee == 1000 + 1200 + 800


def test_goods_not_delivered_to_a_province_are_named(shop: Flask) -> None:
    quoted = fee(shop, "台湾", CUP=1, POT=1, TEA=1)
    assert quoted.undeliverable == ("茶壶 Pot", "茶杯 Cup")
    assert fee(shop, None, CUP=1).undeliverable == ()  # no address yet: nothing refused


def test_free_shipping_from_a_templates_amount_or_the_shops(shop: Flask) -> None:
    with shop.app_context():
        template = get_state().session.scalars(select(ShippingTemplate)).first()
        assert template is not None
        shipping_templates.save_template(
            OWNER, template.id, {**BY_PIECE, "free_over": 15000}
        )  # the cups' own: from ¥150
    assert fee(shop, "浙江", CUP=3).fee == 0  # ¥150 of cups
    assert fee(shop, "浙江", CUP=2, TEA=1).fee == 1000 + 500 + 1200  # ¥100 of cups: not yet
    shop.config["KOUDAI_FREE_SHIPPING_OVER"] = 10000
    assert fee(shop, "新疆", CUP=1, TEA=1) == freight.Freight(0, (), True)  # the whole order


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": ""}, "template_name"),
        ({"name": "按重量"}, "template_name_taken"),
        ({"basis": "volume"}, "template_basis"),
        ({"first": 0}, "template_figure"),
        ({"additional_fee": -1}, "template_figure"),
        ({"free_over": 0}, "template_figure"),
        ({"excluded": ["新疆"]}, "province_twice"),
        ({"areas": [{**BY_PIECE["areas"][0], "provinces": []}]}, "area_without_provinces"),
        ({"areas": [{**BY_PIECE["areas"][0], "provinces": ["火星"]}]}, "unknown_province"),
    ],
)
def test_a_template_the_service_cannot_take_changes_nothing(
    shop: Flask, change: dict[str, Any], reason: str
) -> None:
    with shop.app_context():
        session = get_state().session
        template = session.scalars(
            select(ShippingTemplate).where(ShippingTemplate.name == "常规快递")
        ).one()
        before = (template.name, template.areas, template.excluded, template.first)
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
        with pytest.raises(Exception) as refused:
            shipping_templates.save_template(OWNER, template.id, {**BY_PIECE, **change})
        assert refused.value.reason == reason  # type: ignore[attr-defined]
        session.expire_all()
        template = session.get(ShippingTemplate, template.id)
        assert (template.name, template.areas, template.excluded, template.first) == before
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == audits


def checkout_to(app: Flask, province: str, **quantities: int) -> tuple[Any, ShopClient]:
    buyer = ShopClient(app)
    for code, quantity in quantities.items():
        buyer.add_to_cart(code, quantity)
    return buyer.checkout(province=province), buyer


def test_checkout_charges_the_addresses_province(shop: Flask) -> None:
    response, _ = checkout_to(shop, "新疆维吾尔自治区", CUP=2, CLOTH=1)
    assert response.status_code == 302, text(response)
    with shop.app_context():
        order = get_state().session.scalars(select(Order)).one()
        assert order.shipping_fee == 2000 + 1000 + 800  # the cups to 新疆, the cloth flat
        assert order.total == 3 * 5000 + order.shipping_fee


def test_checkout_to_a_province_not_delivered_to_is_refused_and_places_nothing(
    shop: Flask,
) -> None:
    response, buyer = checkout_to(shop, "台湾省", CUP=1, TEA=1)
    assert response.status_code == 422
    assert "茶杯 Cup 不配送到台湾，请换一个收货地址，或从购物车中移除。" in text(response)
    with shop.app_context():
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(Order)) == 0
        assert session.scalar(select(func.sum(StockLevel.reserved))) == 0
    page = text(buyer.get("/cart"))
    assert "茶杯 Cup" in page and "茶叶 Tea" in page  # the cart is as it was
    # The same goods to another province go through.
    assert buyer.checkout(province="浙江省").status_code == 302


def test_the_checkout_page_shows_the_fee_for_the_address_chosen(shop: Flask) -> None:
    buyer = ShopClient(shop)
    buyer.add_to_cart("CUP", 3)
    assert "估算，按收货地址计算" in text(buyer.get("/cart"))
    response, _ = checkout_to(shop, "西藏自治区", CUP=1)
    with shop.app_context():
        assert get_state().session.scalars(select(Order)).one().shipping_fee == 2000


def form(**typed: str) -> dict[str, str]:
    values = {
        "name": "偏远加价",
        "basis": "piece",
        "first": "1",
        "first_fee": "8.00",
        "additional": "2",
        "additional_fee": "3.50",
        "excluded": "台湾、香港、澳门",
        "free_over": "",
        "area-0-provinces": "新疆维吾尔自治区、西藏",
        "area-0-first": "1",
        "area-0-first_fee": "25.00",
        "area-0-additional": "1",
        "area-0-additional_fee": "12.00",
    }
    values.update(typed)
    return values


def test_the_owner_makes_a_template_in_the_back_office(shop: Flask) -> None:
    owner = login(shop, "owner")
    page = owner.post("/shop-admin/shipping/new", data={"csrf_token": owner.csrf, **form()})
    assert page.status_code == 303, text(page)
    listed = text(owner.get("/shop-admin/shipping"))
    assert "偏远加价" in listed
    assert "首 1 件 ¥8.00，续件每 2 件 ¥3.50" in listed
    assert "新疆、西藏: 首 1 件 ¥25.00，续件每 1 件 ¥12.00" in listed
    with shop.app_context():
        session = get_state().session
        made = session.scalars(
            select(ShippingTemplate).where(ShippingTemplate.name == "偏远加价")
        ).one()
        assert (made.first_fee, made.additional, made.additional_fee) == (800, 2, 350)
        assert made.areas == [
            {
                "provinces": ["新疆", "西藏"],
                "first": 1,
                "first_fee": 2500,
                "additional": 1,
                "additional_fee": 1200,
            }
        ]
        assert made.excluded == ["台湾", "香港", "澳门"]
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "catalog.save_shipping_template")
        ).all()
        assert (audit[-1].object_id, audit[-1].actor) == (str(made.id), f"staff:{OWNER}")


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ({"area-0-provinces": "新僵"}, "「新僵」不是省份名称"),
        ({"excluded": "新疆"}, "「新疆」出现了两次"),
        ({"first_fee": "八块"}, "八块"),
        ({"first": "1.5"}, "运费数字"),
        ({"name": "常规快递"}, "已有名为「常规快递」的运费模板。"),
        ({"area-0-provinces": "", "area-0-first_fee": "25.00"}, "指定地区运费至少要有一个省份。"),
    ],
)
def test_a_form_the_service_cannot_take_is_said_in_chinese_and_saves_nothing(
    shop: Flask, typed: dict[str, str], words: str
) -> None:
    owner = login(shop, "owner")
    page = owner.post("/shop-admin/shipping/new", data={"csrf_token": owner.csrf, **form(**typed)})
    assert page.status_code == 422
    assert any(words in line for line in said(page)), said(page)
    kept = typed.get("name", "偏远加价")
    assert f'value="{kept}"' in page.get_data(as_text=True)  # what was typed stays
    with shop.app_context():
        assert get_state().session.scalar(select(func.count()).select_from(ShippingTemplate)) == 2


def test_only_staff_who_edit_the_catalog_see_the_templates(shop: Flask) -> None:
    warehouse = login(shop, "warehouse")
    assert warehouse.get("/shop-admin/shipping").status_code == 403
    page = warehouse.post("/shop-admin/shipping/new", data={"csrf_token": warehouse.csrf, **form()})
    assert page.status_code == 403
    with shop.app_context():
        assert get_state().session.scalar(select(func.count()).select_from(ShippingTemplate)) == 2


def test_a_product_chooses_its_template_and_one_in_use_is_not_deleted(shop: Flask) -> None:
    owner = login(shop, "owner")
    with shop.app_context():
        session = get_state().session
        cloth = session.scalars(select(Product).where(Product.title == "茶巾 Cloth")).one()
        cloth_id = cloth.id
        weight_id = session.scalars(
            select(ShippingTemplate.id).where(ShippingTemplate.name == "按重量")
        ).one()
    page = owner.get(f"/shop-admin/products/{cloth_id}").get_data(as_text=True)
    assert '<option value="">统一运费</option>' in page  # chosen: no template yet
    fields = {
        "csrf_token": owner.csrf,
        "title": "茶巾 Cloth",
        "action": "save",
        "rows": "1",
        "row-0-key": "{}",
        "row-0-code": "CLOTH",
        "row-0-price": "50.00",
        "shipping": str(weight_id),
    }
    saved = owner.post(f"/shop-admin/products/{cloth_id}", data=fields)
    assert saved.status_code == 303, said(saved)
    with shop.app_context():
        session = get_state().session
        assert session.get(Product, cloth_id).shipping_template_id == weight_id
    refused = owner.post(
        f"/shop-admin/shipping/{weight_id}/delete",
        data={"csrf_token": owner.csrf},
        follow_redirects=True,
    )
    assert "有 2 个商品使用运费模板「按重量」：请先为它们改用其他模板。" in said(refused)
    with shop.app_context():
        assert get_state().session.get(ShippingTemplate, weight_id) is not None


def test_the_form_keeps_every_area_of_a_template_and_offers_two_more(shop: Flask) -> None:
    """Six areas made through the service: the form shows all six and two empty rows, and
    saving it unchanged keeps all six."""
    groups = [["北京", "天津"], ["河北"], ["山西"], ["辽宁"], ["吉林"], ["黑龙江"]]
    areas = [
        {
            "provinces": g,
            "first": 1,
            "first_fee": 100 * (i + 1),
            "additional": 1,
            "additional_fee": 50,
        }
        for i, g in enumerate(groups)
    ]
    with shop.app_context():
        made = shipping_templates.save_template(
            OWNER, None, {**BY_PIECE, "name": "北方", "areas": areas}
        )
        made_id = made.id
    owner = login(shop, "owner")
    page = owner.get(f"/shop-admin/shipping/{made_id}").get_data(as_text=True)
    assert page.count('class="kd-area-row"') == 8
    fields = dict(re.findall(r'name="([^"]+)"[^>]*? value="([^"]*)"', page))
    fields.update({"csrf_token": owner.csrf, "basis": "piece"})
    saved = owner.post(f"/shop-admin/shipping/{made_id}", data=fields)
    assert saved.status_code == 303, said(saved)
    with shop.app_context():
        kept = get_state().session.get(ShippingTemplate, made_id)
        assert [a["provinces"] for a in kept.areas] == groups
        assert [a["first_fee"] for a in kept.areas] == [100, 200, 300, 400, 500, 600]


def test_a_buyer_choosing_another_saved_address_sees_its_fee(shop: Flask) -> None:
    """The checkout page shows the fee to the saved address chosen (the page reloads with
    ``address_id`` when another is picked), and the order is charged the same."""
    with shop.app_context():
        buyer = customers.register(password="buyer-pass-1", email="mei@buyers.cn", name="韩梅梅")
        home = {"name": "韩梅梅", "phone": "13800138000", "city": "杭州市", "street": "文三路 1 号"}
        zhejiang = customers.add_address(buyer.id, province="浙江省", **home).id
        xinjiang = customers.add_address(buyer.id, province="新疆维吾尔自治区", **home).id
    client = ShopClient(shop)
    client.get("/account/login")
    client.post("/account/login", {"login": "mei@buyers.cn", "password": "buyer-pass-1"})
    client.add_to_cart("CUP", 2)
    first = client.get("/checkout")
    assert "运费 寄往浙江 ¥15.00" in text(first)  # the first saved address: 10 + 5
    radios = first.get_data(as_text=True).replace('type="radio" name="address_id" ', "")
    assert f'value="{zhejiang}" checked' in radios
    page = client.get(f"/checkout?address_id={xinjiang}").get_data(as_text=True)
    assert "运费 寄往新疆 ¥30.00" in text(client.get(f"/checkout?address_id={xinjiang}"))
    assert f'value="{xinjiang}" checked' in page.replace('type="radio" name="address_id" ', "")
    assert "估算，按收货地址计算" in text(client.get("/checkout?address_id="))  # a new one
    token = CHECKOUT_TOKEN.search(page).group(1)  # type: ignore[union-attr]
    placed = client.post("/checkout", {"token": token, "address_id": str(xinjiang)})
    assert placed.status_code == 302, text(placed)
    with shop.app_context():
        assert get_state().session.scalars(select(Order)).one().shipping_fee == 3000


def test_the_product_page_says_what_shipping_costs(shop: Flask) -> None:
    buyer = ShopClient(shop)
    with shop.app_context():
        slugs = dict(get_state().session.execute(select(Product.title, Product.slug)).all())

    def line(title: str) -> str:
        page = buyer.get(f"/products/{slugs[title]}").get_data(as_text=True)
        found = re.search(r'<p class="kd-muted" id="shipping-offer">(.*?)</p>', page, re.S)
        assert found is not None
        return " ".join(html.unescape(found.group(1)).split())

    assert line("茶杯 Cup") == "运费 ¥10.00 起（部分地区另计） · 不配送 台湾"
    assert line("茶叶 Tea") == "运费 ¥12.00 起"
    assert line("茶巾 Cloth") == "运费 ¥8.00"  # the flat fee; the shop never ships free here
    shop.config["KOUDAI_FREE_SHIPPING_OVER"] = 9900
    assert line("茶巾 Cloth") == "运费 ¥8.00 · 满 ¥99.00 包邮"
    with shop.app_context():
        template = (
            get_state()
            .session.scalars(select(ShippingTemplate).where(ShippingTemplate.name == "按重量"))
            .one()
        )
        shipping_templates.save_template(
            OWNER, template.id, {**BY_WEIGHT, "first_fee": 0, "additional_fee": 0}
        )
    assert line("茶叶 Tea") == "包邮"


def test_the_api_quotes_as_the_checkout_charges_and_lists_the_templates(shop: Flask) -> None:
    """A storefront elsewhere asks what some goods cost to send before placing the order."""
    with shop.app_context():
        staff.grant("staff:api@shop.cn", "admin", granted_by=OWNER)
    headers = make_key(shop, ["orders.view"], owner="staff:api@shop.cn")
    client = shop.test_client()

    def quote(body: dict[str, Any]) -> Any:
        return client.post(f"{API}/shipping/quote", json=body, headers=headers)

    lines = [{"sku": "CUP", "quantity": 2}, {"sku": "CLOTH", "quantity": 1}]
    assert quote({"lines": lines, "province": "新疆维吾尔自治区"}).get_json() == {
        "fee": 2000 + 1000 + 800,
        "province": "新疆",
        "undeliverable": [],
    }
    assert quote({"lines": lines, "province": "台湾省"}).get_json()["undeliverable"] == ["茶杯 Cup"]
    # The same goods through the shop's checkout: the same fee.
    response, _ = checkout_to(shop, "新疆维吾尔自治区", CUP=2, CLOTH=1)
    assert response.status_code == 302
    with shop.app_context():
        assert get_state().session.scalars(select(Order)).one().shipping_fee == 3800
    # What the buyer pays decides a template's free shipping: a price of the storefront's own.
    with shop.app_context():
        cups = (
            get_state()
            .session.scalars(select(ShippingTemplate).where(ShippingTemplate.name == "常规快递"))
            .one()
        )
        shipping_templates.save_template(OWNER, cups.id, {**BY_PIECE, "free_over": 9000})
    cheap = [{"sku": "CUP", "quantity": 2, "unit_price": 4000}]
    assert quote({"lines": cheap, "province": None}).get_json()["fee"] == 1500
    assert quote({"lines": [{"sku": "CUP", "quantity": 2}]}).get_json()["fee"] == 0
    refused = quote({"lines": [{"sku": "NOPE", "quantity": 1}]})
    assert refused.status_code == 404 and refused.get_json()["code"] == "NotFound"
    assert quote({"lines": [{"sku": "CUP", "quantity": 0}]}).status_code == 422
    listed = client.get(f"{API}/shipping-templates", headers=headers).get_json()["items"]
    assert [t["name"] for t in listed] == ["常规快递", "按重量"]
    assert listed[0]["areas"][0]["provinces"] == ["新疆", "西藏"] and listed[0]["free_over"] == 9000
    products = client.get(f"{API}/products", headers=headers).get_json()["items"]
    assert {p["title"]: p["shipping_template"] for p in products} == {
        "茶杯 Cup": "常规快递",
        "茶壶 Pot": "常规快递",
        "茶叶 Tea": "按重量",
        "茶巾 Cloth": None,
    }


def test_the_checkout_warns_before_the_order_and_refuses_once(shop: Flask) -> None:
    """A saved address where the goods are not delivered: the page says so before the order
    is placed; placing it is refused with the same news said once, not twice."""
    with shop.app_context():
        buyer = customers.register(password="buyer-pass-1", email="lin@buyers.cn", name="林")
        home = {"name": "林", "phone": "13800138000", "city": "台北市", "street": "信义路 1 号"}
        customers.add_address(buyer.id, province="台湾省", **home)
    client = ShopClient(shop)
    client.get("/account/login")
    client.post("/account/login", {"login": "lin@buyers.cn", "password": "buyer-pass-1"})
    client.add_to_cart("CUP", 1)
    page = client.get("/checkout")
    warned = "不配送到台湾。请换一个收货地址，或从购物车中移除。"
    assert warned in text(page)
    token = CHECKOUT_TOKEN.search(page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    address_id = re.search(r'name="address_id" value="(\d+)"', page.get_data(as_text=True))
    assert address_id is not None
    refused = client.post("/checkout", {"token": token, "address_id": address_id.group(1)})
    assert refused.status_code == 422
    said_on_page = text(refused)
    assert said_on_page.count("不配送到台湾") == 1 and warned not in said_on_page


def test_the_owner_gives_ticked_products_a_template_from_the_list(shop: Flask) -> None:
    owner = login(shop, "owner")
    with shop.app_context():
        session = get_state().session
        ids = dict(session.execute(select(Product.title, Product.id)).all())
        weight_id = session.scalars(
            select(ShippingTemplate.id).where(ShippingTemplate.name == "按重量")
        ).one()
    listed = text(owner.get("/shop-admin/products"))
    assert "茶巾 Cloth 1 ¥50.00 统一运费 0 在售" in listed  # 0: buyers who keep it
    assert "茶杯 Cup 1 ¥50.00 常规快递" in listed

    def tick(*titles: str, shipping: str) -> Any:
        body = {"csrf_token": owner.csrf, "products": [str(ids[t]) for t in titles]}
        body["shipping"] = shipping
        return owner.post("/shop-admin/products/shipping", data=body, follow_redirects=True)

    done = tick("茶杯 Cup", "茶巾 Cloth", shipping=str(weight_id))
    assert "已为 2 个商品设置运费。" in said(done)

    def templates_now() -> dict[str, int | None]:
        with shop.app_context():
            rows = get_state().session.execute(select(Product.title, Product.shipping_template_id))
            return dict(rows.all())

    assert templates_now()["茶杯 Cup"] == weight_id == templates_now()["茶巾 Cloth"]
    with shop.app_context():
        audit = (
            get_state()
            .session.scalars(
                select(AuditEntry).where(AuditEntry.action == "catalog.set_shipping_template")
            )
            .all()
        )
        assert sorted((a.object_id, a.before["shipping_template"]) for a in audit) == sorted(
            [(str(ids["茶杯 Cup"]), "常规快递"), (str(ids["茶巾 Cloth"]), None)]
        )
    # Back to the flat fee; nothing ticked is refused and changes nothing.
    assert "已为 1 个商品设置运费。" in said(tick("茶巾 Cloth", shipping=""))
    before = templates_now()
    assert "请先勾选 1 到 200 个商品。" in said(tick(shipping=str(weight_id)))
    assert templates_now() == before
    assert templates_now()["茶巾 Cloth"] is None
    warehouse = login(shop, "warehouse")
    refused = warehouse.post(
        "/shop-admin/products/shipping",
        data={"csrf_token": warehouse.csrf, "products": [str(ids["茶壶 Pot"])], "shipping": ""},
    )
    assert refused.status_code == 403 and templates_now() == before
