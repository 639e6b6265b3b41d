"""Password hashing: the configured method, old hashes after a change, refusals that cost
as much as a real check."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from koudai_flask import Koudai, passwords
from koudai_flask.extension import get_state
from koudai_flask.services import customers, staff


def test_by_default_passwords_are_hashed_with_scrypt(tmp_path: Path, database_url: str) -> None:
    site = Flask("defaults", instance_path=str(tmp_path / "instance"))
    site.config.update(SECRET_KEY="x", KOUDAI_DATABASE_URI=database_url)  # no hash setting
    Koudai(site)
    try:
        assert site.config["KOUDAI_PASSWORD_HASH"] == "scrypt"
        with site.app_context():
            member = staff.grant("staff:o", "owner", email="o@shop.cn", password="long-enough")
            assert member.password_hash is not None
            assert member.password_hash.startswith("scrypt:32768:8:1$")
            assert staff.authenticate("o@shop.cn", "long-enough") is not None
            assert staff.authenticate("o@shop.cn", "wrong-password") is None
    finally:
        get_state(site).stop(site)
        engine = get_state(site).engine
        if engine is not None:
            engine.dispose()


def test_the_configured_method_is_used_and_older_hashes_still_match(app: Flask) -> None:
    app.config["KOUDAI_PASSWORD_HASH"] = "pbkdf2:sha256:2000"
    buyer = customers.register(password="buyer-pass-1", email="b@buyers.cn")
    assert buyer.password_hash is not None
    assert buyer.password_hash.startswith("pbkdf2:sha256:2000$")

    app.config["KOUDAI_PASSWORD_HASH"] = passwords.FOR_TESTS  # the site lowers or raises it
    assert customers.authenticate("b@buyers.cn", "buyer-pass-1") == buyer
    assert customers.authenticate("b@buyers.cn", "buyer-pass-2") is None
    newer = customers.register(password="buyer-pass-1", email="c@buyers.cn")
    assert newer.password_hash is not None
    assert newer.password_hash.startswith(passwords.FOR_TESTS + "$")


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored hashes each check compared a password with."""
    seen: list[str] = []
    real = passwords.check_password_hash

    def counting(stored: str, password: str) -> bool:
        seen.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "check_password_hash", counting)
    return seen


def test_a_refused_login_costs_one_check_whether_or_not_it_exists(
    app: Flask, checks: list[str]
) -> None:
    staff.grant("staff:o@shop.cn", "owner", email="o@shop.cn", password="long-enough")
    staff.grant("staff:gone@shop.cn", "viewer", email="gone@shop.cn", password="long-enough")
    staff.revoke("staff:gone@shop.cn")
    customers.register(password="buyer-pass-1", email="b@buyers.cn")
    checks.clear()

    refusals = [
        staff.authenticate("nobody@shop.cn", "long-enough"),  # no such staff
        staff.authenticate("gone@shop.cn", "long-enough"),  # revoked
        staff.authenticate("o@shop.cn", "wrong-password"),  # wrong password
        customers.authenticate("nobody@buyers.cn", "buyer-pass-1"),  # no such buyer
        customers.authenticate("b@buyers.cn", "wrong-pass-1"),  # wrong password
    ]
    assert refusals == [None] * 5
    assert len(checks) == 5  # one hash computed for each, the stand-in for the missing ones
    stand_ins = {checks[0], checks[1], checks[3]}
    assert len(stand_ins) == 1 and stand_ins.pop().startswith(passwords.FOR_TESTS + "$")
