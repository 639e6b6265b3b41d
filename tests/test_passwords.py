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


def test_the_configured_method_is_used_and_an_older_hash_is_renewed_at_login(app: Flask) -> None:
    app.config["KOUDAI_PASSWORD_HASH"] = "pbkdf2:sha256:2000"
    buyer = customers.register(password="buyer-pass-1", email="b@buyers.cn")
    member = staff.grant("staff:o", "owner", email="o@shop.cn", password="long-enough")
    older = (buyer.password_hash, member.password_hash)
    assert all(h is not None and h.startswith("pbkdf2:sha256:2000$") for h in older)

    app.config["KOUDAI_PASSWORD_HASH"] = passwords.FOR_TESTS  # the site changes it
    # A wrong password changes nothing; the right one matches the older hash and renews it.
    assert customers.authenticate("b@buyers.cn", "buyer-pass-2") is None
    assert staff.authenticate("o@shop.cn", "wrong-password") is None
    assert (buyer.password_hash, member.password_hash) == older
    assert customers.authenticate("b@buyers.cn", "buyer-pass-1") == buyer
    assert staff.authenticate("o@shop.cn", "long-enough") == member
    session = get_state().session
    session.expire_all()  # what was committed, read again
    renewed = (buyer.password_hash, member.password_hash)
    assert all(h is not None and h.startswith(passwords.FOR_TESTS + "$") for h in renewed)
    assert customers.authenticate("b@buyers.cn", "buyer-pass-1") == buyer
    assert staff.authenticate("o@shop.cn", "long-enough") == member
    assert (buyer.password_hash, member.password_hash) == renewed  # renewed once
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
