"""The storefront's read path and what it keeps between requests.

The category and product pages read plain rows on an autocommit connection; the shop's
chrome (links, words) and signed CSRF tokens are kept between requests. Nothing kept is
catalog data, so a write shows on the very next request; these tests hold all of that.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask, url_for
from jinja2 import DictLoader
from sqlalchemy import Engine, NullPool, create_engine, text

from koudai_flask import extension
from koudai_flask.blueprints import create_shop_blueprint
from koudai_flask.blueprints.shop import forms
from koudai_flask.extension import get_state
from koudai_flask.services import catalog, inventory
from tests.shop_client import TOKEN, ShopClient

PRODUCT_LINK = re.compile(r'href="([^"]*/products/[^"]+)"')
STOCK = re.compile(r'value="(TEA-[A-Z]+)"[^>]*>.*?<span class="kd-stock">([^<]+)</span>', re.S)


@pytest.fixture
def tea_shop(make_app, database_url) -> Flask:
    app = make_app(database_url)
    with app.app_context():
        catalog.create_category("茶 Tea", "tea")
        catalog.create_product(
            title="Longjing",
            slug="longjing",
            category="tea",
            options=["size"],
            description="Spring tea",
            skus=[
                {"code": "TEA-S", "price": 4800, "attributes": {"size": "50g"}, "stock": 3},
                {"code": "TEA-L", "price": 8800, "attributes": {"size": "100g"}, "stock": 0},
            ],
            images=["tea/longjing.jpg", "https://cdn.example.com/longjing-2.jpg"],
        )
        catalog.create_product(
            title="Pu'er", slug="puer", category="tea", skus=[{"code": "PU", "price": 9900}]
        )
    return app


def stock_labels(page: str) -> dict[str, str]:
    return dict(STOCK.findall(page))


# -- writes show on the next request ---------------------------------------------------------


def test_product_page_shows_every_write_on_the_next_request(tea_shop):
    client = tea_shop.test_client()
    page = client.get("/shop/products/longjing?lang=en").get_data(as_text=True)
    assert "<h1>Longjing</h1>" in page
    assert stock_labels(page) == {"TEA-S": "Only 3 left", "TEA-L": "Sold out"}
    assert 'src="/shop/media/tea/longjing.jpg"' in page
    assert 'src="https://cdn.example.com/longjing-2.jpg"' in page
    with tea_shop.app_context():
        catalog.update_product("longjing", title="Xihu Longjing")
        catalog.update_sku("TEA-S", price=5200)
        inventory.adjust("TEA-L", 9, reason="restock")
    page = client.get("/shop/products/longjing").get_data(as_text=True)
    assert "<h1>Xihu Longjing</h1>" in page
    assert '<p class="kd-price" id="price">¥52.00</p>' in page
    assert stock_labels(page) == {"TEA-S": "Only 3 left", "TEA-L": "In stock"}
    with tea_shop.app_context():
        inventory.adjust("TEA-S", -3, reason="damaged")
    page = client.get("/shop/products/longjing").get_data(as_text=True)
    assert stock_labels(page) == {"TEA-S": "Sold out", "TEA-L": "In stock"}
    with tea_shop.app_context():
        catalog.archive_product("longjing")
    assert client.get("/shop/products/longjing").status_code == 404


def test_category_page_shows_every_write_on_the_next_request(tea_shop):
    client = tea_shop.test_client()
    page = client.get("/shop/c/tea").get_data(as_text=True)
    assert PRODUCT_LINK.findall(page) == ["/shop/products/puer", "/shop/products/longjing"]
    assert '<span class="kd-price">¥48.00</span>' in page
    with tea_shop.app_context():
        catalog.update_sku("TEA-S", price=4500)
        catalog.create_product(
            title="Baicha", slug="baicha", category="tea", skus=[{"code": "BC", "price": 100}]
        )
        catalog.archive_product("puer")
    page = client.get("/shop/c/tea").get_data(as_text=True)
    assert PRODUCT_LINK.findall(page) == ["/shop/products/baicha", "/shop/products/longjing"]
    assert '<span class="kd-price">¥45.00</span>' in page
    assert client.get("/shop/c/coffee").status_code == 404


def test_read_connection_goes_back_to_the_pool_after_each_request(tea_shop):
    client = tea_shop.test_client()
    pool = get_state(tea_shop).get_engine().pool
    for path in ("/shop/c/tea", "/shop/products/longjing", "/shop/"):
        assert client.get(path).status_code == 200
        if hasattr(pool, "checkedout"):
            assert pool.checkedout() == 0, path


# -- host templates still see what the model shows ------------------------------------------


def test_a_host_product_page_reads_any_model_attribute(tea_shop):
    tea_shop.jinja_loader = DictLoader(  # type: ignore[assignment]
        {
            "koudai/shop/product.html": (
                "{{ product.title }} in {{ product.category.name }}; "
                "{% for sku in product.skus %}{{ sku.code }}={{ sku.available_here }}"
                "/{{ sku.compare_at_price }}/{{ sku.label }} {% endfor %}"
                "cover {{ product.cover.path }}; {{ form.csrf_token }}"
            )
        }
    )
    with tea_shop.app_context():
        catalog.update_sku("TEA-S", compare_at_price=6000)
    page = tea_shop.test_client().get("/shop/products/longjing").get_data(as_text=True)
    assert page.startswith(
        "Longjing in 茶 Tea; TEA-S=3/6000/50g TEA-L=0/None/100g cover tea/longjing.jpg; "
    )
    assert TOKEN.search(page)  # the form itself is built when a template asks for it


# -- the chrome's links, per site -----------------------------------------------------------


def test_links_follow_each_mount_and_each_script_root(make_app, database_url):
    app = make_app(database_url, KOUDAI_REGISTER_BLUEPRINTS=False)
    app.register_blueprint(create_shop_blueprint(), url_prefix="/store")
    app.register_blueprint(create_shop_blueprint(), url_prefix="/wx", name="wechat_shop")
    with app.app_context():
        catalog.create_product(title="Kite", slug="kite", skus=[{"code": "K", "price": 100}])
    client = app.test_client()
    for _ in range(2):  # the second time from what the first one kept
        for root in ("", "/site"):
            for prefix in ("/store", "/wx"):
                page = client.get(
                    f"{prefix}/products/kite", environ_overrides={"SCRIPT_NAME": root}
                ).get_data(as_text=True)
                assert f'<a class="kd-brand" href="{root}{prefix}/">' in page
                assert f'action="{root}{prefix}/cart/add"' in page
                page = client.get(
                    f"{prefix}/products", environ_overrides={"SCRIPT_NAME": root}
                ).get_data(as_text=True)
                assert PRODUCT_LINK.findall(page) == [f"{root}{prefix}/products/kite"]
                assert f'href="{root}{prefix}/products?sort=sales"' in page


def test_two_apps_in_one_process_keep_their_own_links(make_app, database_url):
    one = make_app(database_url)
    two = make_app(database_url, KOUDAI_SHOP_URL_PREFIX="/m")
    with one.app_context():
        catalog.create_product(title="Kite", slug="kite", skus=[{"code": "K", "price": 100}])
    for _ in range(2):
        for app, prefix in ((one, "/shop"), (two, "/m")):
            page = app.test_client().get(f"{prefix}/products").get_data(as_text=True)
            assert PRODUCT_LINK.findall(page) == [f"{prefix}/products/kite"]
            assert f'<a href="{prefix}/cart">' in page


def test_url_defaults_of_the_host_are_applied_on_every_request(tea_shop):
    tenant = {"name": "a"}

    @tea_shop.url_defaults
    def add_tenant(endpoint, values):
        if endpoint.endswith(".all_products"):
            values.setdefault("tenant", tenant["name"])

    client = tea_shop.test_client()
    assert 'href="/shop/products?tenant=a"' in client.get("/shop/c/tea").get_data(as_text=True)
    tenant["name"] = "b"
    page = client.get("/shop/c/tea").get_data(as_text=True)
    assert 'href="/shop/products?tenant=b"' in page
    assert "tenant=a" not in page


# -- the chrome's words, per language -------------------------------------------------------


def test_words_follow_the_language_of_each_request(tea_shop):
    client = tea_shop.test_client()
    for _ in range(2):
        page = client.get("/shop/products/longjing?lang=en").get_data(as_text=True)
        assert ">Add to cart</button>" in page.replace("\n", "").replace("  ", "")
        assert "<legend>Size</legend>" in page and "All products</a>" in page
        page = client.get("/shop/products/longjing?lang=zh_CN").get_data(as_text=True)
        assert "<legend>尺码</legend>" in page and "全部商品</a>" in page
        assert "Add to cart" not in page


# -- sessions and CSRF tokens ---------------------------------------------------------------


def test_plain_pages_send_no_cookie_once_the_visitor_has_one(tea_shop):
    client = tea_shop.test_client()
    first = client.get("/shop/products/longjing?lang=en")
    assert "session=" in first.headers.get("Set-Cookie", "")
    for path in ("/shop/products/longjing", "/shop/c/tea", "/shop/products/longjing?lang=en"):
        response = client.get(path)
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers, path
    assert "Set-Cookie" in client.get("/shop/c/tea?lang=zh_CN").headers  # a new choice is kept


def test_the_product_page_token_adds_to_cart_and_a_forged_one_does_not(tea_shop):
    client = ShopClient(tea_shop)
    page = client.text("/products/longjing")
    assert '<input id="csrf_token" name="csrf_token" type="hidden" value="' in page
    assert client.add_to_cart("TEA-S", 2).status_code == 302
    assert '<span class="kd-badge" id="cart-count">2</span>' in client.text("/products/puer")
    other = ShopClient(tea_shop)
    other.get("/products/longjing")
    assert other.csrf != client.csrf  # each session its own token
    other.csrf = client.csrf  # another visitor's token is refused
    assert other.add_to_cart("TEA-S").status_code == 400
    assert 'id="cart-count"' not in other.text("/products/puer")


def _count_signing(monkeypatch) -> list[int]:
    signed = [0]
    sign = forms.generate_csrf

    def counting(*args, **kwargs):
        signed[0] += 1
        return sign(*args, **kwargs)

    monkeypatch.setattr(forms, "generate_csrf", counting)
    return signed


def test_a_signed_token_is_reused_for_a_minute_then_signed_again(tea_shop, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(forms.time, "monotonic", lambda: now[0])
    signed = _count_signing(monkeypatch)
    client = ShopClient(tea_shop)
    client.get("/products/longjing")
    first = client.csrf
    client.get("/products/puer")
    assert (client.csrf, signed[0]) == (first, 1)  # within the minute: the same signed token
    now[0] += forms.REUSE_SIGNED_FOR + 1
    client.get("/products/longjing")
    assert signed[0] == 2  # signed again, with the current time inside
    assert client.add_to_cart("TEA-S").status_code == 302
    client.csrf = first  # the earlier one is still within WTF_CSRF_TIME_LIMIT
    assert client.add_to_cart("TEA-S").status_code == 302


def test_a_short_time_limit_shortens_the_reuse(make_app, database_url, monkeypatch):
    app = make_app(database_url, WTF_CSRF_TIME_LIMIT=30)  # reused for half a second at most
    with app.app_context():
        catalog.create_product(title="Kite", slug="kite", skus=[{"code": "K", "price": 100}])
    now = [1000.0]
    monkeypatch.setattr(forms.time, "monotonic", lambda: now[0])
    signed = _count_signing(monkeypatch)
    client = ShopClient(app)
    client.get("/products/kite")
    now[0] += 0.4
    client.get("/products/kite")
    assert signed[0] == 1
    now[0] += 0.2
    client.get("/products/kite")
    assert signed[0] == 2


def test_without_csrf_the_page_has_no_token_and_the_form_still_posts(make_app, database_url):
    app = make_app(database_url, WTF_CSRF_ENABLED=False)
    with app.app_context():
        catalog.create_product(
            title="Kite", slug="kite", skus=[{"code": "K", "price": 100, "stock": 1}]
        )
    client = app.test_client()
    page = client.get("/shop/products/kite").get_data(as_text=True)
    assert "csrf_token" not in page.split('id="buy"')[1].split("</form>")[0]
    response = client.post("/shop/cart/add", data={"sku": "K", "quantity": "1"})
    assert response.status_code == 302


# -- pooled connections ---------------------------------------------------------------------


def test_a_connection_killed_while_resting_is_replaced(make_app, postgres_url, monkeypatch):
    app = make_app(postgres_url)
    engine = get_state(app).get_engine()
    with engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    killer = create_engine(postgres_url, poolclass=NullPool)
    with killer.connect() as other:
        other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    killer.dispose()
    # Rested past the window: the checkout pings, finds it dead and gets a new connection.
    monkeypatch.setattr(extension, "IDLE_PING_AFTER", -1.0)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid


def test_a_host_asking_for_pre_ping_gets_it(make_app, postgres_url):
    app = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_pre_ping": True})
    engine = get_state(app).get_engine()
    assert engine.pool._pre_ping is True
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


def _backends_in_checkout_order(engine: Engine) -> tuple[int, int, int]:
    """Two connections checked out and returned (first, then second); then the backend of
    the next checkout, which is the second under LIFO and the first under FIFO."""
    first, second = engine.connect(), engine.connect()
    pids = [c.exec_driver_sql("SELECT pg_backend_pid()").scalar() for c in (first, second)]
    first.close()
    second.close()
    with engine.connect() as again:
        return pids[0], pids[1], again.exec_driver_sql("SELECT pg_backend_pid()").scalar()


def test_the_pool_hands_out_the_connection_returned_last(make_app, postgres_url):
    engine = get_state(make_app(postgres_url)).get_engine()
    first, second, next_one = _backends_in_checkout_order(engine)
    assert first != second and next_one == second
    # A host can still ask for the other order.
    fifo = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_use_lifo": False})
    first, second, next_one = _backends_in_checkout_order(get_state(fifo).get_engine())
    assert first != second and next_one == first


def test_url_for_in_shop_templates_matches_flask(tea_shop):
    with tea_shop.test_request_context("/shop/products/longjing"):
        from koudai_flask.blueprints.shop.chrome import cached_url_for

        for endpoint, values in (
            ("koudai_shop.product", {"slug": "longjing"}),
            ("koudai_shop.category", {"slug": "tea", "sort": "sales", "page": 2}),
            ("koudai_shop.search", {"q": ["a", "b"]}),  # unhashable: built every time
            ("koudai_shop.index", {"_anchor": "top"}),
        ):
            assert cached_url_for(endpoint, **values) == url_for(endpoint, **values)
            assert cached_url_for(endpoint, **values) == url_for(endpoint, **values)
