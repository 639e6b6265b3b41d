"""``flask koudai ...``: stock, staff, worker and demo commands.

A command that cannot do what was asked prints one line starting with ``error:`` on stderr,
exits with code 2 and changes nothing. Click >= 8.2 keeps stderr apart from stdout in
``Result.stderr``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask
from flask_login import LoginManager
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from koudai_flask.extension import get_state
from koudai_flask.models import Product, ProductImage, Sku, StaffMember, StockLevel, StockMovement
from tests.helpers import assert_ledger_consistent


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["koudai", *args])


def count(app: Flask, model: type) -> int:
    session = get_state(app).session
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def on_hand(app: Flask, code: str) -> tuple[int, int]:
    session = get_state(app).session
    session.expire_all()
    level = session.scalar(select(StockLevel).join(Sku).where(Sku.code == code))
    return level.on_hand, level.reserved


# -- stock adjust ---------------------------------------------------------------------------


def test_stock_adjust_prints_the_new_levels(app, shirt):
    before = count(app, StockMovement)

    result = invoke(app, "stock", "adjust", "SHIRT-W", "5")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "SHIRT-W@main: on hand 15, reserved 0, available 15\n",
        "",
    )
    assert on_hand(app, "SHIRT-W") == (15, 0)
    assert count(app, StockMovement) == before + 1
    movement = get_state(app).session.scalar(
        select(StockMovement).order_by(StockMovement.id.desc())
    )
    assert (movement.on_hand_delta, movement.reason, movement.source) == (5, "adjustment", "cli")
    assert_ledger_consistent(get_state(app).session)


def test_stock_adjust_removes_with_a_negative_delta_after_a_double_dash(app, shirt):
    result = invoke(app, "stock", "adjust", "--reason", "damaged", "--", "SHIRT-B", "-4")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "SHIRT-B@main: on hand 6, reserved 0, available 6\n",
        "",
    )
    assert on_hand(app, "SHIRT-B") == (6, 0)


def test_stock_adjust_takes_a_bare_negative_delta(app, shirt):
    result = invoke(app, "stock", "adjust", "SHIRT-B", "-4")
    assert (result.exit_code, result.stderr) == (0, "")
    assert on_hand(app, "SHIRT-B") == (6, 0)


def test_stock_adjust_with_an_unknown_sku_is_one_error_line(app, shirt):
    before = count(app, StockMovement)

    result = invoke(app, "stock", "adjust", "NO-SUCH-SKU", "5")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: unknown SKU 'NO-SUCH-SKU'\n",
    )
    assert count(app, StockMovement) == before


def test_stock_adjust_below_zero_is_refused_and_changes_nothing(app, shirt):
    before = count(app, StockMovement)

    result = invoke(app, "stock", "adjust", "--", "SHIRT-W", "-11")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: SKU 'SHIRT-W': 11 requested but only 10 available\n",
    )
    assert on_hand(app, "SHIRT-W") == (10, 0)
    assert count(app, StockMovement) == before


def test_stock_adjust_with_a_key_changes_nothing_when_run_again(app, shirt):
    before = count(app, StockMovement)
    args = ("stock", "adjust", "--key", "delivery-2013-07", "SHIRT-W", "5")

    first, again = invoke(app, *args), invoke(app, *args)
    expected = (0, "SHIRT-W@main: on hand 15, reserved 0, available 15\n", "")
    assert (first.exit_code, first.stdout, first.stderr) == expected
    assert (again.exit_code, again.stdout, again.stderr) == expected
    assert on_hand(app, "SHIRT-W") == (15, 0)
    assert count(app, StockMovement) == before + 1
    assert_ledger_consistent(get_state(app).session)


# -- staff create ---------------------------------------------------------------------------


def staff_members(app: Flask) -> list[StaffMember]:
    session = get_state(app).session
    session.expire_all()
    return list(session.scalars(select(StaffMember).order_by(StaffMember.id)))


def test_staff_create_without_a_host_login(app):
    result = invoke(
        app, "staff", "create", "--email", "a@b.cn", "--password", "longenough", "--role", "owner"
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "staff staff:a@b.cn is now owner\n",
        "",
    )
    [member] = staff_members(app)
    assert (member.user_id, member.email, member.role, member.active) == (
        "staff:a@b.cn",
        "a@b.cn",
        "owner",
        True,
    )
    assert check_password_hash(member.password_hash, "longenough")


def test_staff_create_with_an_unknown_role_is_one_error_line(app):
    result = invoke(
        app, "staff", "create", "--email", "a@b.cn", "--password", "longenough", "--role", "boss"
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: unknown role 'boss'; roles: owner, admin, customer_service, warehouse, "
        "marketing, viewer\n",
    )
    assert staff_members(app) == []


def test_staff_create_with_a_short_password_writes_no_row(app):
    result = invoke(
        app, "staff", "create", "--email", "a@b.cn", "--password", "short", "--role", "owner"
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: a staff password needs at least 8 characters\n",
    )
    assert staff_members(app) == []


def test_staff_create_needs_a_user_id_when_the_host_has_its_own_login(app):
    LoginManager(app)

    result = invoke(
        app, "staff", "create", "--email", "a@b.cn", "--password", "longenough", "--role", "owner"
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: this site has its own login: pass --user-id with the host user's id\n",
    )
    assert staff_members(app) == []


def test_staff_create_with_an_email_already_taken_is_one_error_line(app):
    args = ("staff", "create", "--email", "a@b.cn", "--password", "longenough", "--role")
    assert invoke(app, *args, "owner").exit_code == 0

    result = invoke(
        app, "staff", "create", "--user-id", "42", "--email", "A@b.cn", "--role", "admin"
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert "a@b.cn" in result.stderr
    assert [member.user_id for member in staff_members(app)] == ["staff:a@b.cn"]


# -- worker ---------------------------------------------------------------------------------


def test_worker_refuses_inline_jobs(app):
    assert app.config["KOUDAI_JOBS"] == "inline"

    result = invoke(app, "worker", "--burst")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: the worker needs KOUDAI_JOBS = 'rq' (and KOUDAI_REDIS_URL); inline jobs need "
        "none\n",
    )


def test_worker_without_redis_says_so_in_one_line(make_app, database_url):
    app = make_app(database_url, KOUDAI_JOBS="rq", KOUDAI_REDIS_URL="redis://127.0.0.1:1/0")
    result = invoke(app, "worker", "--burst")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: cannot reach Redis at KOUDAI_REDIS_URL (ConnectionError); start it or fix the "
        "URL\n",
    )


def test_worker_for_channels_that_are_not_linked_names_them(make_app, database_url, redis_url):
    app = make_app(database_url, KOUDAI_JOBS="rq", KOUDAI_REDIS_URL=redis_url)
    result = invoke(app, "worker", "--burst", "--channel", "tb", "--channel", "nope")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: no linked channel named nope, tb; see the channels page\n",
    )


def test_relay_sends_what_inline_dispatch_left_pending(app):
    from koudai_flask import Koudai
    from koudai_flask.models import OutboxEvent
    from koudai_flask.services import catalog

    calls: list[str] = []

    def flaky(topic: str, payload: dict[str, Any]) -> None:
        calls.append(topic)
        if len(calls) == 1:
            raise RuntimeError("the subscriber's server was down")

    Koudai.subscribe(app, "stock.changed", flaky)
    with app.app_context():
        catalog.create_product(title="Bell", skus=[{"code": "BELL", "price": 100, "stock": 1}])
    session = get_state(app).session
    pending = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status != "done")
    assert session.scalar(pending) == 1
    session.rollback()
    result = invoke(app, "relay")
    assert (result.exit_code, result.output) == (0, "sent 1 event(s)\n")
    assert calls == ["stock.changed", "stock.changed"]
    assert session.scalar(pending) == 0
    assert invoke(app, "relay").output == "sent 0 event(s)\n"


# -- demo seed ------------------------------------------------------------------------------


@pytest.mark.parametrize("own_folder", [True, False], ids=["media-folder", "instance-folder"])
def test_demo_seed_creates_products_with_skus_and_image_files(
    make_app, database_url, tmp_path, own_folder
):
    config = {"KOUDAI_MEDIA_FOLDER": str(tmp_path / "media")} if own_folder else {}
    app = make_app(database_url, **config)
    media = (
        str(tmp_path / "media") if own_folder else os.path.join(app.instance_path, "koudai-media")
    )

    result = invoke(app, "demo", "seed", "--products", "31")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "created 31 products\n", "")

    with app.app_context():
        products = get_state(app).session.scalars(select(Product)).all()
        assert len(products) == 31
        for product in products:
            assert len(product.skus) >= 1, product.slug
            assert len(product.images) >= 1, product.slug
            for image in product.images:
                with open(os.path.join(media, image.path), encoding="utf-8") as fh:
                    assert fh.read().startswith("<svg "), image.path
        totals = (count(app, Product), count(app, Sku), count(app, ProductImage))
        movements = count(app, StockMovement)

    result = invoke(app, "demo", "seed", "--products", "31")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "the demo catalog is already there; nothing added\n",
        "",
    )
    with app.app_context():
        assert (count(app, Product), count(app, Sku), count(app, ProductImage)) == totals
        assert count(app, StockMovement) == movements
