"""Every way a host site embeds koudai, and the configuration checks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, render_template_string
from flask_login import LoginManager, UserMixin, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from koudai_flask import Koudai
from koudai_flask.blueprints import create_shop_blueprint
from koudai_flask.config import SETTINGS
from koudai_flask.errors import ConfigError, KoudaiError
from koudai_flask.extension import get_state
from koudai_flask.models import Order, Product
from koudai_flask.schema import create_all
from koudai_flask.services import catalog, orders, staff


def rules(app: Flask) -> dict[str, str]:
    return {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}


def test_default_prefixes_and_no_app_on_the_extension(make_app, database_url):
    app = make_app(database_url)
    found = rules(app)
    assert found["koudai_shop.index"] == "/shop/"
    assert found["koudai_admin.index"] == "/shop-admin/"
    assert found["koudai_api.root"] == "/shop-api/v1/"
    assert found["koudai_hooks.health"] == "/shop-hooks/health"
    koudai = Koudai()
    second = Flask("second")
    second.config["KOUDAI_DATABASE_URI"] = database_url
    koudai.init_app(second)
    assert not hasattr(koudai, "app")
    assert "koudai" in second.extensions
    get_state(second).get_engine().dispose()


def test_without_any_database_setting_koudai_keeps_sqlite_in_the_instance_folder(tmp_path):
    app = Flask("bare_site", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="s", KOUDAI_PASSWORD_HASH="pbkdf2:sha256:1000")
    Koudai(app)
    engine = get_state(app).get_engine()
    try:
        assert engine.url.database == str(tmp_path / "instance" / "koudai.db")
        result = app.test_cli_runner().invoke(args=["koudai", "db", "upgrade"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            catalog.create_product(title="Tea", skus=[{"code": "TEA", "price": 100}])
            assert get_state().session.scalar(select(Product.slug)) == "tea"
        assert (tmp_path / "instance" / "koudai.db").stat().st_size > 0
    finally:
        get_state(app).stop(app)
        engine.dispose()


def test_without_a_secret_key_the_pages_say_what_to_set(tmp_path):
    """The README's ten lines without SECRET_KEY: every shop and back-office page answers
    500 naming the setting (not a traceback from the first form); a key set after
    ``init_app``, as some hosts do, is taken from the next request on."""
    app = Flask("keyless_site", instance_path=str(tmp_path / "instance"))
    app.config.update(KOUDAI_PASSWORD_HASH="pbkdf2:sha256:1000")
    Koudai(app)
    try:
        assert app.test_cli_runner().invoke(args=["koudai", "db", "upgrade"]).exit_code == 0
        client = app.test_client()
        for path in ("/shop/", "/shop/cart", "/shop-admin/login"):
            response = client.get(path)
            assert response.status_code == 500, path
            assert "this app has no SECRET_KEY" in response.get_data(as_text=True)
            assert "app.config['SECRET_KEY']" in response.get_data(as_text=True)
        app.config["SECRET_KEY"] = "set-later"
        assert client.get("/shop/").status_code == 200
        assert 'name="csrf_token"' in client.get("/shop-admin/login").get_data(as_text=True)
    finally:
        get_state(app).stop(app)
        get_state(app).get_engine().dispose()


def test_custom_prefixes(make_app, database_url):
    app = make_app(
        database_url,
        KOUDAI_SHOP_URL_PREFIX="/m",
        KOUDAI_ADMIN_URL_PREFIX="/office",
        KOUDAI_API_URL_PREFIX="/api/shop",
        KOUDAI_HOOKS_URL_PREFIX="/callbacks",
    )
    found = rules(app)
    assert found["koudai_shop.index"] == "/m/"
    assert found["koudai_admin.index"] == "/office/"
    assert found["koudai_api.root"] == "/api/shop/"
    assert found["koudai_hooks.health"] == "/callbacks/health"
    assert app.test_client().get("/m/").status_code == 200


_host_apps: list[tuple[Flask, SQLAlchemy]] = []


@pytest.fixture(autouse=True)
def _dispose_host_engines() -> Any:
    yield
    while _host_apps:
        app, db = _host_apps.pop()
        with app.app_context():
            db.engine.dispose()


def host_app(tmp_path: Any, url: str, **config: Any) -> tuple[Flask, SQLAlchemy, type]:
    """A merchant site with its own db, its own User model and Flask-Login."""

    class HostBase(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=HostBase)

    class User(db.Model, UserMixin):  # type: ignore[name-defined,misc]
        __tablename__ = "host_users"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    app = Flask("host", instance_path=str(tmp_path / "host"))
    app.config.update(SECRET_KEY="host-secret", SQLALCHEMY_DATABASE_URI=url, **config)
    db.init_app(app)
    manager = LoginManager(app)
    manager.login_view = "login"
    manager.user_loader(lambda user_id: db.session.get(User, int(user_id)))

    @app.get("/login")
    def login() -> str:
        return "host login page"

    @app.get("/as/<int:user_id>")
    def become(user_id: int) -> str:
        login_user(db.session.get(User, user_id))
        return "ok"

    Koudai(app, db=db)
    _host_apps.append((app, db))
    with app.app_context():
        User.__table__.drop(db.engine, checkfirst=True)
        User.__table__.create(db.engine)
    return app, db, User


def test_host_db_session_is_used(tmp_path, database_url):
    app, db, user_model = host_app(tmp_path, database_url)
    with app.app_context():
        assert get_state(app).session is db.session()
        assert get_state(app).engine is None  # no second engine
        catalog.create_product(title="Host tee", skus=[{"code": "HT-1", "price": 100, "stock": 2}])
        buyer = user_model(name="buyer")
        db.session.add(buyer)
        order = orders.place(channel="web", lines=[{"sku": "HT-1", "quantity": 1}])
        # One session: the host's pending row was committed with our order.
        db.session.rollback()
        assert db.session.scalar(select(user_model).where(user_model.name == "buyer"))
        assert db.session.scalar(select(Order.number)) == order.number


def test_host_db_must_be_initialised_first(tmp_path):
    app = Flask("late")
    with pytest.raises(ConfigError, match="db.init_app"):
        Koudai(app, db=SQLAlchemy())


def test_host_login_manager_is_used_never_a_second(tmp_path, database_url):
    app, db, user_model = host_app(tmp_path, database_url)
    manager = app.login_manager
    assert app.login_manager is manager
    with app.app_context():
        db.session.add_all([user_model(name="owner"), user_model(name="buyer")])
        db.session.commit()
        owner_id, buyer_id = (
            db.session.scalar(select(user_model.id).where(user_model.name == name))
            for name in ("owner", "buyer")
        )
        staff.grant(owner_id, "owner")
    client = app.test_client()
    response = client.get("/shop-admin/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    client.get(f"/as/{buyer_id}")
    assert client.get("/shop-admin/").status_code == 403
    client.get(f"/as/{owner_id}")
    assert client.get("/shop-admin/").status_code == 200


def test_without_flask_login_koudai_has_its_own_staff_login(make_app, database_url):
    app = make_app(database_url)
    assert not hasattr(app, "login_manager")
    with app.app_context():
        staff.grant("staff:boss@shop.cn", "owner", email="boss@shop.cn", password="correct-horse")
    client = app.test_client()
    assert client.get("/shop-admin/").headers["Location"].startswith("/shop-admin/login")
    page = client.get("/shop-admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    no_token = client.post(
        "/shop-admin/login", data={"email": "boss@shop.cn", "password": "correct-horse"}
    )
    assert no_token.status_code == 400
    wrong = client.post(
        "/shop-admin/login",
        data={"email": "boss@shop.cn", "password": "wrong-horse", "csrf_token": token},
    )
    assert wrong.status_code == 401
    right = client.post(
        "/shop-admin/login?next=//evil.example/",
        data={"email": "boss@shop.cn", "password": "correct-horse", "csrf_token": token},
    )
    assert right.status_code == 302
    assert right.headers["Location"] == "/shop-admin/"  # never an open redirect
    assert client.get("/shop-admin/").status_code == 200


def test_host_registers_blueprints_itself_even_twice(make_app, database_url):
    app = make_app(database_url, KOUDAI_REGISTER_BLUEPRINTS=False)
    assert "koudai_shop.index" not in rules(app)
    app.register_blueprint(create_shop_blueprint(), url_prefix="/store")
    app.register_blueprint(create_shop_blueprint(), url_prefix="/wx", name="wechat_shop")
    with app.app_context():
        catalog.create_product(
            title="Twice", slug="twice", skus=[{"code": "TW", "price": 100, "stock": 1}]
        )
    client = app.test_client()
    for prefix in ("/store", "/wx"):
        page = client.get(f"{prefix}/").get_data(as_text=True)
        assert f'href="{prefix}/products/twice"' in page
    assert client.get("/wx/products/twice").status_code == 200


def test_host_templates_win(make_app, database_url, tmp_path):
    folder = tmp_path / "host_templates" / "koudai" / "shop"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("branded home: {{ newest | length }} products")
    (tmp_path / "host_templates" / "brand.html").write_text(
        "<main class=brand>{% block koudai_content %}{% endblock %}</main>"
    )
    app = make_app(database_url, KOUDAI_SHOP_BASE_TEMPLATE="brand.html")
    app.template_folder = str(tmp_path / "host_templates")
    with app.app_context():
        catalog.create_product(
            title="Pin", slug="pin", skus=[{"code": "PIN", "price": 100, "stock": 1}]
        )
    client = app.test_client()
    assert client.get("/shop/").get_data(as_text=True) == "branded home: 1 products"
    product = client.get("/shop/products/pin").get_data(as_text=True)
    assert product.strip().startswith("<main class=brand>")
    assert "仅剩 1 件" in product
    with app.test_request_context():
        assert render_template_string("{{ 1999 | fen }}") == "¥19.99"


def test_two_apps_with_different_configs(make_app, tmp_path):
    urls = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        from sqlalchemy import create_engine

        engine = create_engine(url)
        create_all(engine)
        engine.dispose()
        urls.append(url)
    first = make_app(urls[0], KOUDAI_SHOP_NAME="First", KOUDAI_RESERVATION_TTL=60)
    second = make_app(urls[1], KOUDAI_SHOP_NAME="Second", KOUDAI_SHOP_URL_PREFIX="/store")
    with first.app_context():
        catalog.create_product(title="Only in first", skus=[{"code": "F1", "price": 1}])
    with second.app_context():
        assert get_state().session.scalar(select(Product)) is None
    assert "First" in first.test_client().get("/shop/").get_data(as_text=True)
    assert "Second" in second.test_client().get("/store/").get_data(as_text=True)
    assert first.config["KOUDAI_RESERVATION_TTL"] == 60
    assert second.config["KOUDAI_RESERVATION_TTL"] == 1800


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"KOUDAI_JBOS": "rq"}, "unknown setting KOUDAI_JBOS; did you mean KOUDAI_JOBS?"),
        ({"KOUDAI_JOBS": "celery"}, "KOUDAI_JOBS = 'celery' must be one of 'inline', 'rq'"),
        ({"KOUDAI_SHOP_URL_PREFIX": "shop"}, "must be a path that starts with '/'"),
        ({"KOUDAI_RESERVATION_TTL": -5}, "must be a positive number of seconds"),
        ({"KOUDAI_TIMEZONE": "Mars/Olympus"}, "must be an IANA time zone"),
        ({"KOUDAI_REGISTER_BLUEPRINTS": "no"}, "must be True or False"),
        ({"KOUDAI_PASSWORD_HASH": "md5"}, "must be 'scrypt', 'scrypt:<n>:<r>:<p>'"),
    ],
)
def test_bad_config_fails_at_init_with_the_fix(config, message):
    app = Flask("typo")
    app.config.update(config)
    with pytest.raises(ConfigError) as info:
        Koudai(app)
    assert message in str(info.value)
    assert "koudai" not in app.extensions


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_every_setting_refuses_a_value_of_the_wrong_kind_naming_itself(key):
    app = Flask("wrong_kind")
    app.config[key] = object()
    with pytest.raises(ConfigError) as info:
        Koudai(app)
    message = str(info.value)
    assert message.startswith(key) and " must " in message, message
    assert "koudai" not in app.extensions


def test_init_twice_and_services_without_init_say_what_to_do(make_app, database_url):
    app = make_app(database_url)
    with pytest.raises(KoudaiError, match="already initialised"):
        Koudai(app)
    bare = Flask("bare")
    with bare.app_context(), pytest.raises(KoudaiError, match=r"call Koudai\(app, db=db\)"):
        catalog.active_products()
