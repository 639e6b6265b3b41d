"""API keys: shown once and stored hashed, revocable, last use, rate limits, CLI, admin page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from koudai_flask.errors import PermissionDenied, ValidationError
from koudai_flask.models import ApiKey, AuditEntry
from koudai_flask.models.base import utcnow
from koudai_flask.services import api_keys, staff
from koudai_flask.services.transaction import current_session
from tests.api_support import API, OWNER, make_key, seed_shop

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def test_a_key_is_shown_once_and_only_its_hash_is_kept(app):
    seed_shop(app)
    created = api_keys.create(OWNER, "erp link", ["orders.view"])
    prefix, secret = created.token.split("_", 2)[1:]
    row = current_session().scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    assert row is not None and row.scopes == ["orders.view"]
    assert secret not in (row.secret_hash, row.prefix, row.name)
    assert len(row.secret_hash) == 64
    audit = current_session().scalar(
        select(AuditEntry).where(AuditEntry.action == "api_key.create")
    )
    assert audit is not None and secret not in str(audit.after)
    client = app.test_client()
    ok = client.get(f"{API}/orders", headers={"Authorization": f"Bearer {created.token}"})
    assert ok.status_code == 200
    wrong = client.get(f"{API}/orders", headers={"Authorization": f"Bearer kd_{prefix}_x{secret}"})
    assert wrong.status_code == 401
    assert wrong.get_json() == {"code": "InvalidApiKey", "message": "unknown API key", "errors": {}}


def test_scopes_are_checked_when_the_key_is_made(app):
    seed_shop(app)
    staff.grant("staff:viewer@shop.cn", "viewer")
    with pytest.raises(ValidationError, match="unknown scope 'orders.eat'"):
        api_keys.create(OWNER, "k", ["orders.eat"])
    with pytest.raises(ValidationError, match="at least one scope"):
        api_keys.create(OWNER, "k", [])
    with pytest.raises(PermissionDenied, match="does not hold orders.ship"):
        api_keys.create("staff:viewer@shop.cn", "k", ["orders.ship"])
    with pytest.raises(PermissionDenied, match="may not staff.manage"):
        api_keys.create(OWNER, "k", ["orders.view"], created_by="staff:viewer@shop.cn")
    assert current_session().scalar(select(ApiKey.id)) is None


def test_a_revoked_key_is_401_at_once(app):
    seed_shop(app)
    headers = make_key(app, ["orders.view"])
    client = app.test_client()
    assert client.get(f"{API}/orders", headers=headers).status_code == 200
    prefix = headers["Authorization"].split("_")[1]
    api_keys.revoke(prefix)
    response = client.get(f"{API}/orders", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["message"] == "this API key was revoked"


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer nonsense", "Basic a2Q6eA==", "Bearer kd__", "Bearer kd_zz_yy"]
)
def test_a_missing_or_malformed_key_is_401(app, header):
    response = app.test_client().get(f"{API}/orders", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["code"] == "InvalidApiKey"


def test_last_use_is_written_at_most_once_a_minute(app):
    seed_shop(app)
    headers = make_key(app, ["orders.view"])
    client = app.test_client()
    client.get(f"{API}/orders", headers=headers)
    session = current_session()
    first = session.scalar(select(ApiKey.last_used_at))
    assert first is not None
    client.get(f"{API}/orders", headers=headers)
    session.rollback()
    assert session.scalar(select(ApiKey.last_used_at)) == first
    session.execute(update(ApiKey).values(last_used_at=utcnow() - timedelta(minutes=2)))
    session.commit()
    client.get(f"{API}/orders", headers=headers)
    session.rollback()
    assert session.scalar(select(ApiKey.last_used_at)) > first


def _hit_the_limit(app: Any) -> None:
    headers = make_key(app, ["orders.view"])
    client = app.test_client()
    statuses = [client.get(f"{API}/orders", headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get(f"{API}/orders", headers=headers)
    assert refused.get_json()["code"] == "RateLimited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    other = make_key(app, ["orders.view"])  # another key has its own window
    assert client.get(f"{API}/orders", headers=other).status_code == 200


def test_rate_limit_in_process(make_app, database_url):
    app = make_app(database_url, KOUDAI_API_RATE_LIMIT=3, KOUDAI_API_RATE_WINDOW=3600)
    seed_shop(app)
    _hit_the_limit(app)


def test_rate_limit_in_redis_is_shared_by_processes(make_app, database_url, redis_url):
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    config = {
        "KOUDAI_API_RATE_LIMIT": 3,
        "KOUDAI_API_RATE_WINDOW": 3600,
        "KOUDAI_API_RATE_STORAGE": "redis",
        "KOUDAI_REDIS_URL": redis_url,
    }
    app = make_app(database_url, **config)
    seed_shop(app)
    _hit_the_limit(app)
    keys = Redis.from_url(redis_url).keys("koudai:api-rate:*")
    assert len(keys) == 2


def test_cli_creates_a_key_printed_once_and_revokes_it(app):
    seed_shop(app)
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "koudai",
            "api-key",
            "create",
            "--owner",
            OWNER,
            "--scope",
            "orders.view",
            "--scope",
            "stock.adjust",
        ]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert re.fullmatch(r"kd_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    client = app.test_client()
    assert (
        client.get(f"{API}/stock", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    listed = runner.invoke(args=["koudai", "api-key", "list"])
    prefix = token.split("_")[1]
    assert prefix in listed.output and token.split("_", 2)[2] not in listed.output
    assert runner.invoke(args=["koudai", "api-key", "revoke", prefix]).exit_code == 0
    assert (
        client.get(f"{API}/stock", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    bad = runner.invoke(args=["koudai", "api-key", "create", "--owner", OWNER, "--scope", "nope"])
    assert bad.exit_code == 2 and "unknown scope 'nope'" in bad.output


def _login(app: Any) -> tuple[Any, str]:
    client = app.test_client()
    page = client.get("/shop-admin/login").get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    response = client.post(
        "/shop-admin/login",
        data={"email": "owner@shop.cn", "password": "correct-horse-battery", "csrf_token": token},
    )
    assert response.status_code == 302
    return client, token


def test_admin_page_creates_shows_once_and_revokes(make_app, database_url):
    app = make_app(database_url, TESTING=False)
    seed_shop(app)
    client, csrf = _login(app)
    form = {"name": "weidian", "owner": OWNER, "scopes": ["orders.view"], "csrf_token": csrf}
    refused = client.post("/shop-admin/api-keys", data={**form, "csrf_token": "x"})
    assert refused.status_code == 400
    created = client.post("/shop-admin/api-keys", data=form)
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    token = re.search(r'<code id="token">(kd_[^<]+)</code>', created.get_data(as_text=True)).group(
        1
    )
    api = app.test_client()
    assert api.get(f"{API}/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listing = client.get("/shop-admin/api-keys").get_data(as_text=True)
    assert token not in listing and token.split("_")[1] in listing
    prefix = token.split("_")[1]
    done = client.post(f"/shop-admin/api-keys/{prefix}/revoke", data={"csrf_token": csrf})
    assert done.status_code == 303
    assert api.get(f"{API}/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 401
