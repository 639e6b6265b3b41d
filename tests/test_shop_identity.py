"""Who the buyer is: the host's Flask-Login user, or a WeChat openid; and template overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify, request
from flask_login import LoginManager, UserMixin, login_user
from sqlalchemy import select

from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.extension import get_state
from koudai_flask.models import Customer, CustomerIdentity, Order
from koudai_flask.services import catalog
from tests.shop_client import ShopClient


class HostUser(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


@pytest.fixture
def host_shop(make_app, database_url) -> Flask:
    app = make_app(database_url)
    manager = LoginManager(app)
    manager.login_view = "host_login"
    manager.user_loader(HostUser)

    @app.get("/login")
    def host_login() -> str:
        return "host login"

    @app.get("/as/<user_id>")
    def become(user_id: str) -> str:
        login_user(HostUser(user_id))
        return "ok"

    with app.app_context():
        catalog.create_product(
            title="Tea", slug="tea", skus=[{"code": "TEA", "price": 2500, "stock": 9}]
        )
    return app


def test_the_host_user_is_the_buyer(host_shop):
    client = ShopClient(host_shop, token_page="/products/tea")
    client.client.get("/as/u-42")
    client.add_to_cart("TEA", 2)
    assert client.checkout().status_code == 302
    with host_shop.app_context():
        session = get_state().session
        customer = session.scalar(select(Customer).where(Customer.user_id == "u-42"))
        order = session.scalar(select(Order))
        assert order.customer_id == customer.id
    other = ShopClient(host_shop, token_page="/products/tea")
    other.client.get("/as/u-7")
    assert other.get(f"/orders/{order.number}").status_code == 404
    assert client.get(f"/orders/{order.number}").status_code == 200


def test_with_a_host_login_our_login_pages_send_to_the_host(host_shop):
    client = ShopClient(host_shop, token_page="/products/tea")
    response = client.get("/account/login?next=/shop/cart")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert client.get("/orders").headers["Location"].startswith("/login?next=")


class FakeWeChat:
    """The two WeChat OAuth2 endpoints (PROTOCOLS §3.4) on a loopback socket."""

    def __init__(self) -> None:
        self.app = Flask("fake_wechat")
        self.codes: dict[str, dict[str, str]] = {}

        @self.app.get("/sns/oauth2/access_token")
        def access_token() -> Any:
            code = request.args.get("code", "")
            if request.args.get("grant_type") != "authorization_code" or code not in self.codes:
                return jsonify({"errcode": 40029, "errmsg": "invalid code"})
            found = self.codes.pop(code)  # a code is single-use
            return jsonify(
                {
                    "access_token": "AT",
                    "expires_in": 7200,
                    "refresh_token": "RT",
                    "scope": "snsapi_base",
                    **found,
                }
            )

        self.server = LoopbackServer(self.app)
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def wechat() -> Iterator[FakeWeChat]:
    fake = FakeWeChat()
    yield fake
    fake.stop()


WECHAT_UA = "Mozilla/5.0 (iPhone) AppleWebKit Mobile MicroMessenger/8.0.47"


def test_inside_wechat_the_openid_logs_the_buyer_in_silently(make_app, database_url, wechat):
    app = make_app(
        database_url,
        KOUDAI_WECHAT={
            "appid": "wx1234567890",
            "secret": "s",
            "oauth_url": "https://open.weixin.qq.com",
            "api_url": wechat.url,
        },
    )
    client = app.test_client()
    first = client.get("/shop/", headers={"User-Agent": WECHAT_UA})
    assert first.status_code == 302
    target = urlsplit(first.headers["Location"])
    query = parse_qs(target.query)
    assert target.path == "/connect/oauth2/authorize"
    assert target.fragment == "wechat_redirect"
    assert query["scope"] == ["snsapi_base"] and query["appid"] == ["wx1234567890"]
    assert query["redirect_uri"] == ["http://localhost/shop/wechat/oauth"]
    wechat.codes["CODE1"] = {"openid": "oOpenId123", "unionid": "uUnion9"}
    back = client.get(
        f"/shop/wechat/oauth?code=CODE1&state={query['state'][0]}",
        headers={"User-Agent": WECHAT_UA},
    )
    assert back.headers["Location"] == "/shop/"
    assert client.get("/shop/", headers={"User-Agent": WECHAT_UA}).status_code == 200
    with app.app_context():
        kinds = dict(
            get_state().session.execute(select(CustomerIdentity.kind, CustomerIdentity.value)).all()
        )
        assert kinds == {"wechat_openid": "oOpenId123", "wechat_unionid": "uUnion9"}


def _wechat_visit(client: Any, wechat: FakeWeChat, code: str, found: dict[str, str]) -> None:
    """A shop visit inside WeChat: the silent OAuth round trip, then the shop again."""
    first = client.get("/shop/", headers={"User-Agent": WECHAT_UA})
    assert first.status_code == 302
    state = parse_qs(urlsplit(first.headers["Location"]).query)["state"][0]
    wechat.codes[code] = found
    back = client.get(f"/shop/wechat/oauth?code={code}&state={state}")
    assert back.headers["Location"] == "/shop/"
    assert client.get("/shop/", headers={"User-Agent": WECHAT_UA}).status_code == 200


def test_a_host_user_in_wechat_gets_the_openid_unless_another_customer_has_it(host_shop, wechat):
    host_shop.config["KOUDAI_WECHAT"] = {"appid": "wx1", "secret": "s", "api_url": wechat.url}
    owner = host_shop.test_client()
    owner.get("/as/u-42")
    _wechat_visit(owner, wechat, "C1", {"openid": "oShared"})
    # Another host account opens the shop in the same WeChat (a shared phone): the openid
    # stays with the customer who has it; merging two accounts is staff's call (CRM).
    other = host_shop.test_client()
    other.get("/as/u-7")
    _wechat_visit(other, wechat, "C2", {"openid": "oShared"})
    with host_shop.app_context():
        session = get_state().session
        found = session.execute(
            select(Customer.user_id, CustomerIdentity.kind, CustomerIdentity.value)
            .join(CustomerIdentity, CustomerIdentity.customer_id == Customer.id)
            .order_by(Customer.user_id, CustomerIdentity.kind)
        )
        assert [tuple(row) for row in found] == [
            ("u-42", "web", "u-42"),
            ("u-42", "wechat_openid", "oShared"),
            ("u-7", "web", "u-7"),
        ]


def test_a_forged_oauth_state_is_refused(make_app, database_url, wechat):
    app = make_app(
        database_url, KOUDAI_WECHAT={"appid": "wx1", "secret": "s", "api_url": wechat.url}
    )
    client = app.test_client()
    client.get("/shop/", headers={"User-Agent": WECHAT_UA})
    wechat.codes["C"] = {"openid": "oX"}
    assert client.get("/shop/wechat/oauth?code=C&state=forged").status_code == 400
    with app.app_context():
        assert get_state().session.scalar(select(CustomerIdentity)) is None


def test_outside_wechat_nothing_redirects(make_app, database_url, wechat):
    app = make_app(
        database_url, KOUDAI_WECHAT={"appid": "wx1", "secret": "s", "api_url": wechat.url}
    )
    assert app.test_client().get("/shop/").status_code == 200


def test_a_host_product_template_replaces_ours(make_app, database_url, tmp_path):
    folder = tmp_path / "templates" / "koudai" / "shop"
    folder.mkdir(parents=True)
    (folder / "product.html").write_text(
        '{% extends "koudai/shop/master.html" %}'
        "{% block shop_content %}<h1 class=branded>{{ product.title }}</h1>{% endblock %}"
    )
    app = make_app(database_url)
    app.template_folder = str(tmp_path / "templates")
    with app.app_context():
        catalog.create_product(
            title="Silk scarf", slug="scarf", skus=[{"code": "SC", "price": 9900, "stock": 1}]
        )
    page = app.test_client().get("/shop/products/scarf").get_data(as_text=True)
    assert "<h1 class=branded>Silk scarf</h1>" in page
    assert 'name="sku"' not in page  # ours is not rendered at all
    assert 'class="kd-tabbar"' in page  # the shop's chrome still wraps it
