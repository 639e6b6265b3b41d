"""The pytest plugin a host site gets: its fixtures work in a site's own test run.

Each test writes a small site test suite into a temporary folder and runs pytest on it in a
subprocess, the way the site's CI would, with the plugin loaded only through its entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

BARE_SITE_TESTS = """
from koudai_flask.services import orders


def test_a_buyer_sees_only_their_own_orders(koudai_product, koudai_buyer):
    code = koudai_product(title="Teapot", price=5900, stock=3).skus[0].code
    li = koudai_buyer(name="Li Lei")
    order = orders.place(channel="web", lines=[{"sku": code, "quantity": 1}], customer=li.customer)
    assert order.number in li.client.get("/shop/orders").get_data(as_text=True)
    han = koudai_buyer(name="Han Meimei")
    assert order.number not in han.client.get("/shop/orders").get_data(as_text=True)


def test_staff_are_scoped_by_their_role(koudai_staff):
    warehouse = koudai_staff("warehouse")
    assert warehouse.client.get("/shop-admin/orders").status_code == 200
    assert warehouse.client.get("/shop-admin/staff").status_code == 403
    assert koudai_staff("owner").client.get("/shop-admin/staff").status_code == 200


def test_the_sandbox_shop_shows_our_stock(koudai_product, koudai_sandbox_channel):
    code = koudai_product(stock=7).skus[0].code
    shop = koudai_sandbox_channel(code)
    shop.push()
    assert shop.remote_quantity(code) == 7


def test_config_reaches_the_bare_app(koudai_app):
    assert koudai_app.config["KOUDAI_SHOP_NAME"] == "Site under test"


def test_a_wrong_expectation_fails(koudai_product):
    assert koudai_product(stock=2).skus[0].code == "not-the-code"
"""

BARE_SITE_CONFTEST = """
import pytest


@pytest.fixture
def koudai_config():
    return {"KOUDAI_SHOP_NAME": "Site under test"}
"""

LOGIN_SITE_CONFTEST = """
import pytest

from examples.host_site.app import create_app
from examples.host_site.extensions import db
from examples.host_site.models import User


@pytest.fixture
def app(tmp_path):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'site.db'}", "SECRET_KEY": "t",
         "TESTING": True}
    )
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture
def koudai_user_factory(koudai_app):
    def factory(kind):
        user = User(email=f"{kind}-{db.session.query(User).count()}@site.test", name=kind)
        user.set_password("site-password")
        db.session.add(user)
        db.session.commit()
        return str(user.id)

    return factory
"""

LOGIN_SITE_TESTS = """
from koudai_flask.services import orders


def test_the_sites_own_user_is_the_buyer(koudai_product, koudai_buyer):
    code = koudai_product(stock=5).skus[0].code
    buyer = koudai_buyer(name="Site user")
    assert buyer.customer.user_id == buyer.user_id
    order = orders.place(channel="web", lines=[{"sku": code, "quantity": 2}],
                         customer=buyer.customer)
    assert order.number in buyer.client.get("/shop/orders").get_data(as_text=True)


def test_the_sites_own_user_is_the_staff_member(koudai_staff):
    owner = koudai_staff("owner")
    assert owner.client.get("/shop-admin/staff").status_code == 200
    assert koudai_staff("warehouse").client.get("/shop-admin/staff").status_code == 403
"""

MISSING_FACTORY_TESTS = """
def test_needs_the_site_factory(koudai_buyer):
    koudai_buyer()
"""


def run_site_suite(folder: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_plugin_is_registered_for_pytest():
    names = {(e.name, e.value) for e in entry_points(group="pytest11")}
    assert ("koudai_flask", "koudai_flask.pytest_plugin") in names


def test_a_bare_site_gets_an_app_products_buyers_staff_and_a_sandbox_shop(tmp_path):
    result = run_site_suite(
        tmp_path / "bare", {"conftest.py": BARE_SITE_CONFTEST, "test_site.py": BARE_SITE_TESTS}
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert "1 failed, 4 passed" in summary, result.stdout + result.stderr
    assert "test_a_wrong_expectation_fails" in result.stdout
    assert result.returncode == 1


def test_a_site_with_its_own_login_gets_its_users_as_buyer_and_staff(tmp_path):
    result = run_site_suite(
        tmp_path / "login", {"conftest.py": LOGIN_SITE_CONFTEST, "test_site.py": LOGIN_SITE_TESTS}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout.strip().splitlines()[-1]


def test_a_site_with_its_own_login_is_told_to_override_the_user_factory(tmp_path):
    conftest = LOGIN_SITE_CONFTEST.split("@pytest.fixture\ndef koudai_user_factory")[0]
    result = run_site_suite(
        tmp_path / "nofactory", {"conftest.py": conftest, "test_site.py": MISSING_FACTORY_TESTS}
    )
    assert result.returncode != 0
    assert "override the `koudai_user_factory` fixture" in result.stdout + result.stderr
