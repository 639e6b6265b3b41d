"""Fixtures for a host site's own tests, loaded by pytest through the ``pytest11`` entry point.

A site that embeds koudai gets, with no import and no conftest of its own:

- ``koudai_app``: the Flask app with koudai on it, inside an app context, its tables created.
  It is the site's own ``app`` fixture when there is one (the pytest-flask convention), else a
  bare Flask app on a throwaway SQLite file, whose passwords are hashed cheaply
  (``passwords.FOR_TESTS``); ``koudai_config`` (a dict, override it) is applied to that bare app.
- ``koudai_product``: a factory, ``koudai_product(price=9900, stock=10)`` → a product whose SKUs
  have unique codes.
- ``koudai_buyer`` and ``koudai_staff``: factories of test clients already logged in, as a buyer
  (``.customer``) or as a staff member of a role (``koudai_staff("warehouse")``). With the site's
  own Flask-Login, override ``koudai_user_factory`` to create one of the site's users and return
  its id: koudai links that user to a Customer / StaffMember as it does in production.
- ``koudai_sandbox_channel``: a Taobao shop on a sandbox TOP server on 127.0.0.1, linked as a
  channel, its items bound to the given SKUs by outer id.

Every name starts with ``koudai_`` so that nothing here shadows a fixture of the site.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

_codes = itertools.count(1)


@dataclass
class KoudaiBuyer:
    """A logged-in buyer: ``client`` (a Flask test client) and the ``customer`` row."""

    client: FlaskClient
    customer: Any
    user_id: str | None = None


@dataclass
class KoudaiStaff:
    """A logged-in staff member: ``client``, the ``member`` row and its ``user_id``."""

    client: FlaskClient
    member: Any
    user_id: str


@dataclass
class KoudaiSandboxChannel:
    """A linked sandbox Taobao shop: the channel's ``name``, the ``sandbox`` server and the
    remote ``items`` created for the bound SKUs."""

    name: str
    sandbox: Any
    items: list[Any] = field(default_factory=list)

    def push(self) -> None:
        """Publish every bound SKU's quantity now, as the channel's push job does."""
        from koudai_flask.jobs.sync import run_channel_job
        from koudai_flask.services import channels, stock_sync

        stock_sync.mark_channel_dirty(self.name)
        run_channel_job(channels.info(self.name).id, "push_stock", [])

    def remote_quantity(self, sku_code: str) -> int:
        """What the sandbox shop shows for ``sku_code`` (its SKU with that outer id)."""
        for item in self.items:
            for sku in item.skus.values():
                if sku.outer_id == sku_code:
                    return int(sku.quantity)
        raise KeyError(sku_code)


@pytest.fixture
def koudai_config() -> dict[str, Any]:
    """Extra config for the bare app ``koudai_app`` builds when the site has no ``app``."""
    return {}


def _site_app(request: pytest.FixtureRequest) -> Flask | None:
    if "app" not in request.fixturenames and not _fixture_defined(request, "app"):
        return None
    app = request.getfixturevalue("app")
    return app if isinstance(app, Flask) else None


def _fixture_defined(request: pytest.FixtureRequest, name: str) -> bool:
    manager = request._fixturemanager
    return bool(manager.getfixturedefs(name, request.node))


@pytest.fixture
def koudai_app(request: pytest.FixtureRequest, koudai_config: dict[str, Any]) -> Iterator[Flask]:
    from koudai_flask import Koudai, passwords
    from koudai_flask.extension import get_state
    from koudai_flask.schema import create_all

    app = _site_app(request)
    own = app is None
    workdir: tempfile.TemporaryDirectory[str] | None = None
    if app is None:
        workdir = tempfile.TemporaryDirectory(prefix="koudai-test-")
        app = Flask("koudai_host_test", instance_path=str(Path(workdir.name) / "instance"))
        app.config.update(
            SECRET_KEY="koudai-test-secret",
            TESTING=True,
            KOUDAI_DATABASE_URI=f"sqlite:///{Path(workdir.name) / 'koudai.db'}",
            KOUDAI_PASSWORD_HASH=passwords.FOR_TESTS,  # logins in milliseconds
        )
        app.config.update(koudai_config)
        Koudai(app)
    elif "koudai" not in app.extensions:
        raise pytest.UsageError(
            "koudai_app: the site's `app` fixture has no koudai on it; call Koudai(app) or "
            "koudai.init_app(app) in the app factory the fixture uses"
        )
    _fresh_identity_per_request(app)
    state = get_state(app)
    with app.app_context():
        create_all(state.get_engine())  # only what is missing; the seed rows once
        yield app
    state.stop(app)
    if own:
        if state.engine is not None:
            state.engine.dispose()
        assert workdir is not None
        workdir.cleanup()


def _forget_previous_user() -> None:
    g.pop("_login_user", None)  # Flask-Login's per-request cache of current_user


def _fresh_identity_per_request(app: Flask) -> None:
    """The fixture holds one app context for the whole test, and requests made inside it share
    its ``g``; Flask-Login caches ``current_user`` there, so a second client would be served as
    the first one's user. Each request starts afresh, as it does in production."""
    hooks = app.before_request_funcs.setdefault(None, [])
    if _forget_previous_user not in hooks:
        hooks.insert(0, _forget_previous_user)


ProductFactory = Callable[..., Any]


@pytest.fixture
def koudai_product(koudai_app: Flask) -> ProductFactory:
    """``koudai_product(title=, price=, stock=, code=, skus=, **fields)`` → a new Product.

    One SKU by default; ``skus=[{"code", "price", "stock", "attributes"}, ...]`` for more
    (with ``options=[...]`` naming the attributes). Codes default to ``TEST-<n>``.
    """
    from koudai_flask.services import catalog

    def factory(
        title: str = "Test product",
        *,
        price: int = 9900,
        stock: int = 10,
        code: str | None = None,
        skus: list[dict[str, Any]] | None = None,
        **fields: Any,
    ) -> Any:
        if skus is None:
            skus = [{"code": code or f"TEST-{next(_codes)}", "price": price, "stock": stock}]
        return catalog.create_product(title=title, skus=skus, **fields)

    return factory


UserFactory = Callable[[str], str]


@pytest.fixture
def koudai_user_factory(koudai_app: Flask) -> UserFactory:
    """``factory(kind) -> user id`` for a site with its own Flask-Login (kind is "buyer" or
    "staff"). Override it to create one of the site's users; without a site login manager koudai
    keeps its own accounts and this is not called."""

    def factory(kind: str) -> str:
        raise pytest.UsageError(
            "the site uses its own Flask-Login: override the `koudai_user_factory` fixture to "
            f"create one of its users (a {kind}) and return that user's id"
        )

    return factory


def _login_site_user(client: FlaskClient, user_id: str) -> None:
    # Flask-Login keeps the user id under these session keys; the site's user_loader
    # resolves it on the next request, exactly as after its own login view.
    with client.session_transaction() as session:
        session["_user_id"] = user_id
        session["_fresh"] = True


@pytest.fixture
def koudai_buyer(koudai_app: Flask, koudai_user_factory: UserFactory) -> Callable[..., KoudaiBuyer]:
    """``koudai_buyer(name="Test buyer")`` → a :class:`KoudaiBuyer` already logged in."""
    from koudai_flask.identity import BUYER_SESSION_KEY, host_login_manager
    from koudai_flask.services import customers

    counter = itertools.count(1)

    def factory(name: str = "Test buyer", **details: Any) -> KoudaiBuyer:
        client = koudai_app.test_client()
        if host_login_manager() is not None:
            user_id = koudai_user_factory("buyer")
            customer = customers.for_user(user_id, name=name)
            _login_site_user(client, user_id)
            return KoudaiBuyer(client, customer, user_id)
        n = next(counter)
        details.setdefault("email", f"buyer{n}-{id(client)}@example.test")
        details.setdefault("password", "buyer-test-password")
        customer = customers.register(name=name, **details)
        with client.session_transaction() as session:
            session[BUYER_SESSION_KEY] = customer.id
        return KoudaiBuyer(client, customer)

    return factory


@pytest.fixture
def koudai_staff(koudai_app: Flask, koudai_user_factory: UserFactory) -> Callable[..., KoudaiStaff]:
    """``koudai_staff(role="owner", channels=None)`` → a :class:`KoudaiStaff` logged in."""
    from koudai_flask.identity import STAFF_SESSION_KEY, host_login_manager
    from koudai_flask.services import staff

    counter = itertools.count(1)

    def factory(role: str = "owner", *, channels: list[str] | None = None) -> KoudaiStaff:
        client = koudai_app.test_client()
        if host_login_manager() is not None:
            user_id = koudai_user_factory("staff")
            member = staff.grant(user_id, role, channels=channels)
            _login_site_user(client, user_id)
            return KoudaiStaff(client, member, user_id)
        n = next(counter)
        user_id = f"staff:test-{role}-{n}-{id(client)}"
        member = staff.grant(user_id, role, channels=channels, email=f"{role}{n}@example.test")
        with client.session_transaction() as session:
            session[STAFF_SESSION_KEY] = member.user_id
        return KoudaiStaff(client, member, user_id)

    return factory


@pytest.fixture
def koudai_sandbox_channel(koudai_app: Flask) -> Iterator[Callable[..., KoudaiSandboxChannel]]:
    """``koudai_sandbox_channel(*sku_codes, name="taobao-test")``: a Taobao shop on a sandbox
    TOP server on 127.0.0.1 with one item per SKU (outer id = SKU code), linked as a channel
    and bound; its stock is published by the channel's sync jobs, or at once by ``push()``."""
    from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
    from koudai_flask.services import channels

    servers: list[Any] = []

    def factory(*sku_codes: str, name: str = "taobao-test") -> KoudaiSandboxChannel:
        sandbox = TaobaoSandbox()
        servers.append(sandbox)
        grant = sandbox.issue_session()
        channels.create(
            "taobao",
            name,
            settings={**sandbox.settings_for_client(), "session": grant.access_token},
        )
        linked = KoudaiSandboxChannel(name, sandbox)
        for code in sku_codes:
            spec = {"outer_id": code, "properties_name": "1627207:28320:颜色分类:默认"}
            item = sandbox.add_item(code, "1.00", outer_id=code, skus=[spec])
            linked.items.append(item)
            sku = next(iter(item.skus.values()))
            channels.link(
                name, code, external_item_id=str(item.num_iid), external_sku_id=str(sku.sku_id)
            )
        return linked

    yield factory
    for server in servers:
        server.stop()
