"""The back office's channel pages: status, OAuth linking, settings, mapping, drift, requeue."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select, update

from koudai_flask.connectors.base import RemoteStock
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.taobao.tokens import decrypt_token
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Channel, ChannelListing, DriftRecord, Sku, SyncFailure
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, channels, staff, stock_sync, sync_log
from tests.sync_support import link_shop, record_dead_letters, seed_shirts
from tests.test_admin import PASSWORD, build, login

ADMIN = "/shop-admin"


class _Page(HTMLParser):
    """The rows of one table (tbody) and the text of elements by id, as a browser shows them."""

    def __init__(self, table_id: str | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id = table_id
        self.in_table = self.in_body = False
        self.rows: list[tuple[dict[str, str], list[str]]] = []
        self.cell: list[str] | None = None
        self.texts: dict[str, list[str]] = {}
        self.open_ids: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "br":
            self.handle_data(" ")
        if "id" in found:
            self.open_ids.append((tag, found["id"]))
            self.texts[found["id"]] = []
        if tag == "table" and found.get("id") == self.table_id:
            self.in_table = True
        elif self.in_table and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append((found, []))
        elif self.in_body and tag == "td":
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.open_ids and self.open_ids[-1][0] == tag:
            self.open_ids.pop()
        if tag == "table":
            self.in_table = self.in_body = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1][1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)
        for _, element_id in self.open_ids:
            self.texts[element_id].append(data)


def rows(page: str, table_id: str) -> list[tuple[dict[str, str], list[str]]]:
    parser = _Page(table_id)
    parser.feed(page)
    return parser.rows


def text(page: str, element_id: str) -> str:
    parser = _Page()
    parser.feed(page)
    return " ".join(" ".join(parser.texts[element_id]).split())


def flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'class="kd-flash kd-flash-\w+">([^<]*)<', page)]


@pytest.fixture
def sandbox() -> Iterator[TaobaoSandbox]:
    server = TaobaoSandbox()
    yield server
    server.stop()


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    """tests/test_admin.py's shop (channels tb-a and tb-b, a member of every role) plus an
    admin scoped to tb-a, on SQLite and on PostgreSQL."""
    app, _ = build(make_app, database_url)
    with app.app_context():
        staff.grant(
            "staff:tbadmin@shop.cn",
            "admin",
            channels=["tb-a"],
            email="tbadmin@shop.cn",
            password=PASSWORD,
        )
    return app


def english(app: Flask, who: str) -> Any:
    client = login(app, who)
    client.get(f"{ADMIN}/?lang=en")
    return client


def post(client: Any, path: str, **data: Any) -> Any:
    return client.post(f"{ADMIN}{path}", data={"csrf_token": client.csrf, **data})


def db(app: Flask) -> Any:
    return get_state(app).session


def audit_actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(
            db(app).scalars(
                select(AuditEntry.action)
                .where(AuditEntry.action.like("channels.%"))
                .order_by(AuditEntry.id)
            )
        )


def bindings(app: Flask, name: str) -> dict[str, tuple[str, str, str, int, int | None]]:
    with app.app_context():
        found = db(app).execute(
            select(ChannelListing, Sku.code)
            .join(Sku, Sku.id == ChannelListing.sku_id)
            .join(Channel, Channel.id == ChannelListing.channel_id)
            .where(Channel.name == name)
        )
        return {
            code: (
                listing.external_item_id,
                listing.external_sku_id,
                str(listing.share.normalize()),
                listing.buffer,
                listing.cap,
            )
            for listing, code in found
        }


def linked_without_bindings(app: Flask, sandbox: TaobaoSandbox, name: str = "tb") -> None:
    """A Taobao channel authorised on the sandbox (tokens sealed), nothing bound yet."""
    grant = sandbox.issue_session()
    with app.app_context():
        channels.create(
            "taobao", name, settings=sandbox.settings_for_client(session=grant.access_token)
        )


# -- list and detail -------------------------------------------------------------------------


def test_list_and_detail_show_each_channel_exactly(shop, sandbox):
    app = shop
    with app.app_context():
        seed_shirts(stock=10)
        linked = link_shop(app, sandbox, "tb", share=0.5, buffer=1, cap=3)
        item = str(linked.item.num_iid)
        white, blue = str(linked.sku_id("SHIRT-W")), str(linked.sku_id("SHIRT-B"))
        # The rule gives min(3, floor((10 - 1) * 0.5)) = 3; Taobao shows 7 for the white one.
        stock_sync.compare(
            "tb",
            [RemoteStock(item, white, 7, "SHIRT-W"), RemoteStock(item, blue, 3, "SHIRT-B")],
            record=True,
            repair=False,
        )
        channel_id = channels.info("tb").id
        sync_log.record(
            channel_id,
            "push_stock",
            [],
            error_kind="PermanentFailure",
            message="PermanentFailure: item refused",
            attempts=5,
        )
        session = db(app)
        session.execute(
            update(Channel)
            .where(Channel.id == channel_id)
            .values(
                status="failing",
                last_error="TemporaryFailure: taobao timed out",
                last_sync_at=datetime(2026, 11, 25, 10, 4, tzinfo=UTC),
            )
        )
        blue_id = session.scalar(select(Sku.id).where(Sku.code == "SHIRT-B"))
        session.execute(
            update(ChannelListing)
            .where(ChannelListing.sku_id == blue_id)
            .values(dirty_since=utcnow() - timedelta(hours=2, minutes=5, seconds=30))
        )
        session.commit()
    client = english(app, "owner")
    page = client.get(f"{ADMIN}/channels").get_data(as_text=True)
    assert [(attrs["data-channel"], cells) for attrs, cells in rows(page, "channels")] == [
        (
            "tb",
            [
                "tb Taobao shop",
                "Failing",
                "2026-11-25 18:04",
                "2 h 5 min",
                "1",
                "2",
                "TemporaryFailure: taobao timed out",
            ],
        ),
        ("tb-a", ["tb-a Taobao shop", "Working", "never", "up to date", "0", "0", ""]),
        ("tb-b", ["tb-b Taobao shop", "Working", "never", "up to date", "0", "0", ""]),
    ]

    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert text(page, "status") == "Failing"
    assert text(page, "last-sync") == "2026-11-25 18:04"
    assert text(page, "lag") == "2 h 5 min"
    assert text(page, "dead-letter-count") == "1"
    assert text(page, "linked-count") == "2"
    assert text(page, "shop-nick") == "sandbox_koudai_shop"
    assert [(a["data-sku"], a["data-drifted"], cells) for a, cells in rows(page, "listings")] == [
        ("SHIRT-B", "no", ["SHIRT-B", f"{item} / {blue}", "0.5", "1", "3", "3", "3", "3"]),
        (
            "SHIRT-W",
            "yes",
            ["SHIRT-W", f"{item} / {white}", "0.5", "1", "3", "3", "3", "7 drifted"],
        ),
    ]
    assert [cells[1:] for _, cells in rows(page, "drift")] == [["SHIRT-W", "7", "3", "no"]]
    assert [cells[1:4] for _, cells in rows(page, "letters")] == [
        ["push_stock", "PermanentFailure: item refused", "5"]
    ]
    assert text(page, "settings").startswith(f"App key {sandbox.app_key} App secret set")
    assert sandbox.app_secret not in page
    assert {"sync-now", "reconcile", "pause", "mapping-link", "import-catalog"} <= set(
        re.findall(r'id="([\w-]+)"', page)
    )


def test_a_channel_without_a_connector_has_no_page(shop):
    client = login(shop, "owner")
    assert client.get(f"{ADMIN}/channels/web").status_code == 404
    assert client.get(f"{ADMIN}/channels/nope").status_code == 404


# -- linking a Taobao shop -------------------------------------------------------------------


def authorize_on_sandbox(location: str) -> str:
    """What the owner's browser does on Taobao's page: submit its form; returns the callback."""
    page = requests.get(location, timeout=10)
    assert page.status_code == 200
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page.text)
    }
    base = location.split("/authorize?")[0]
    answer = requests.post(f"{base}/authorize", data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    callback = urlsplit(answer.headers["Location"])
    assert callback.netloc == "localhost"
    return f"{callback.path}?{callback.query}"


def test_linking_a_taobao_shop_by_oauth_against_the_sandbox(shop, sandbox):
    app = shop
    client = english(app, "owner")
    assert client.get(f"{ADMIN}/channels/new?kind=taobao").status_code == 200
    response = post(
        client,
        "/channels/new",
        kind="taobao",
        name="tb-new",
        app_key=sandbox.app_key,
        app_secret=sandbox.app_secret,
        gateway_url=sandbox.gateway_url,
        oauth_base=sandbox.oauth_base,
        sign_method="md5",
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(f"{sandbox.oauth_base}/authorize?")
    query = parse_qs(urlsplit(location).query)
    assert query["redirect_uri"] == ["http://localhost/shop-admin/channels/tb-new/oauth/callback"]
    assert query["client_id"] == [sandbox.app_key]
    with app.app_context():
        created = channels.info("tb-new")
    assert (created.active, created.settings.get("access_token")) == (False, None)

    callback = authorize_on_sandbox(location)
    response = client.get(callback)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert flashes(page) == ["Linked as sandbox_koudai_shop."]
    assert text(page, "shop-nick") == "sandbox_koudai_shop"
    with app.app_context():
        linked = channels.info("tb-new")
    sealed = linked.settings["access_token"]
    plain = decrypt_token(app.config["SECRET_KEY"], sealed)
    assert plain in sandbox.state.grants and sealed != plain
    assert decrypt_token(app.config["SECRET_KEY"], linked.settings["refresh_token"]) == (
        sandbox.state.grants[plain].refresh_token
    )
    assert (linked.status, linked.active) == ("ok", True)
    assert audit_actions(app) == ["channels.create", "channels.authorize"]
    with app.app_context():
        entries = db(app).scalars(select(AuditEntry).where(AuditEntry.object_id == "tb-new")).all()
        assert [e.after.get("access_token") for e in entries] == [None, "set"]
        assert entries[0].after["settings"]["app_secret"] == "set"
        assert plain not in str([e.after for e in entries])

    # The same answer again (a replay) is refused and changes nothing.
    assert client.get(callback).status_code == 400
    with app.app_context():
        assert channels.info("tb-new").settings == linked.settings
    assert audit_actions(app) == ["channels.create", "channels.authorize"]


def test_a_forged_or_foreign_state_is_refused(shop, sandbox):
    app = shop
    with app.app_context():
        channels.create("taobao", "tb-x", settings=sandbox.settings_for_client())
        before = channels.info("tb-x").settings
    owner = english(app, "owner")
    response = post(owner, "/channels/tb-x/authorize")
    assert response.status_code == 303
    callback = authorize_on_sandbox(response.headers["Location"])
    code = parse_qs(urlsplit(callback).query)["code"][0]

    forged = f"{ADMIN}/channels/tb-x/oauth/callback?code={code}&state=forged"
    page = owner.get(forged)
    assert page.status_code == 400 and 'id="oauth-refused"' in page.get_data(as_text=True)
    other_browser = english(app, "admin")  # a real state, but this browser never asked
    assert other_browser.get(callback).status_code == 400
    with app.app_context():
        assert channels.info("tb-x").settings == before
    assert audit_actions(app) == []

    # The refusals did not use up the pending state: the real answer still links the shop.
    assert owner.get(callback).status_code == 303
    with app.app_context():
        assert channels.info("tb-x").settings["taobao_user_nick"] == "sandbox_koudai_shop"


def test_an_expired_shop_shows_authorize_again(shop, sandbox):
    app = shop
    linked_without_bindings(app, sandbox, "tb")
    with app.app_context():
        channels.record_sync(channels.info("tb").id, error="AuthExpired: x", status="auth_expired")
    client = english(app, "owner")
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert text(page, "authorize") == "Authorize again"
    assert post(client, "/channels/tb/sync").status_code == 303
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert flashes(page) == ["The shop's authorization expired: authorize it again first."]
    response = post(client, "/channels/tb/authorize")
    callback = authorize_on_sandbox(response.headers["Location"])
    assert client.get(callback).status_code == 303
    with app.app_context():
        info = channels.info("tb")
    assert (info.status, info.last_error) == ("ok", None)
    assert audit_actions(app) == ["channels.authorize"]


# -- ERP settings ----------------------------------------------------------------------------


def test_erp_settings_form_keeps_secrets_out_of_the_page(shop):
    app = shop
    client = english(app, "owner")
    page = client.get(f"{ADMIN}/channels/new?kind=webhook_erp").get_data(as_text=True)
    assert re.findall(r'<input (?:type="(\w+)" )?name="(order_url|secret)"', page) == [
        ("", "order_url"),
        ("password", "secret"),
    ]
    bad = post(
        client, "/channels/new", kind="webhook_erp", name="erp", order_url="ftp://x", secret="s3"
    )
    assert bad.status_code == 400
    assert "An address starting with http:// or https://." in bad.get_data(as_text=True)
    with app.app_context():
        assert db(app).scalar(select(func.count()).where(Channel.name == "erp")) == 0

    secret = "hmac-secret-41"
    response = post(
        client,
        "/channels/new",
        kind="webhook_erp",
        name="erp",
        order_url="http://127.0.0.1:9/orders",
        secret=secret,
    )
    assert response.status_code == 303
    page = client.get(f"{ADMIN}/channels/erp").get_data(as_text=True)
    assert text(page, "settings") == "Order URL http://127.0.0.1:9/orders Signing secret set"
    assert secret not in page
    assert secret not in client.get(f"{ADMIN}/channels/erp/settings").get_data(as_text=True)

    response = post(client, "/channels/erp/settings", order_url="http://127.0.0.1:9/v2", secret="")
    assert response.status_code == 303
    with app.app_context():
        settings = channels.info("erp").settings
    assert (settings["order_url"], settings["secret"]) == ("http://127.0.0.1:9/v2", secret)
    assert post(client, "/channels/erp/settings", order_url="", secret="").status_code == 400
    with app.app_context():
        assert channels.info("erp").settings == settings
        entries = db(app).scalars(select(AuditEntry).where(AuditEntry.object_id == "erp")).all()
    assert [e.action for e in entries] == ["channels.create", "channels.settings"]
    assert entries[1].before == {"order_url": "http://127.0.0.1:9/orders", "secret": "set"}
    assert entries[1].after == {"order_url": "http://127.0.0.1:9/v2", "secret": "set"}


# -- SKU mapping -----------------------------------------------------------------------------


def mapping_shop(app: Flask, sandbox: TaobaoSandbox) -> dict[str, tuple[str, str]]:
    """Sandbox items with outer ids (tote, shirt W/B, socks M/L, two gift boxes both "MUG")
    and our SKUs SHIRT-W, SHIRT-B, SOCK-M and MUG; returns their (item, SKU) by outer id."""
    items = sandbox.seed_demo()
    sandbox.add_item("礼盒 Gift box", "10.00", 5, outer_id="MUG")
    sandbox.add_item("礼盒 Gift box II", "12.00", 5, outer_id="MUG")
    linked_without_bindings(app, sandbox, "tb")
    with app.app_context():
        seed_shirts()
        catalog.create_product(title="Socks", skus=[{"code": "SOCK-M", "price": 2500, "stock": 4}])
        catalog.create_product(title="Mug", skus=[{"code": "MUG", "price": 3900, "stock": 4}])
    remote = {items[0].outer_id: (str(items[0].num_iid), "")}
    for item in items[1:]:
        for sku in item.skus.values():
            remote[sku.outer_id] = (str(item.num_iid), str(sku.sku_id))
    return remote


def test_mapping_binds_exactly_the_chosen_sku(shop, sandbox):
    app = shop
    remote = mapping_shop(app, sandbox)
    client = english(app, "owner")
    page = client.get(f"{ADMIN}/channels/tb/mapping").get_data(as_text=True)
    assert text(page, "unbound-count") == "7"
    assert text(page, "auto-bind") == "Auto-bind by outer id (3)"  # MUG is on two of theirs
    tote = remote["TOTE-1"][0]
    response = post(
        client,
        "/channels/tb/mapping/bind",
        sku_code="MUG",
        item=tote,
        sku="",
        share="0.5",
        buffer="2",
        cap="",
    )
    assert response.status_code == 303
    assert bindings(app, "tb") == {"MUG": (tote, "", "0.5", 2, None)}
    page = client.get(f"{ADMIN}/channels/tb/mapping").get_data(as_text=True)
    assert flashes(page) == [f"MUG bound to item {tote}."]
    assert text(page, "unbound-count") == "6"
    with app.app_context():
        listing = db(app).scalar(select(ChannelListing))
        assert listing.dirty_since is not None  # its first push goes out at the next sync

    shirt_item, white = remote["SHIRT-W"]
    refused = [
        (
            {"sku_code": "SHIRT-W", "item": shirt_item, "sku": white, "share": "1.5"},
            "The share is a number from 0 to 1, like 0.5.",
        ),
        (
            {"sku_code": "SHIRT-W", "item": shirt_item, "sku": white, "cap": "-1"},
            "Buffer and cap are whole numbers (an empty cap: no cap).",
        ),
        (
            {"sku_code": "MUG", "item": shirt_item, "sku": white},
            "MUG is already bound on tb: unlink it first.",
        ),
        (
            {"sku_code": "SHIRT-W", "item": tote, "sku": ""},
            f"Item {tote} (SKU -) is already bound to MUG",
        ),
        (
            {"sku_code": "NOPE", "item": shirt_item, "sku": white},
            "There is no SKU with the code NOPE.",
        ),
        ({"sku_code": "", "item": shirt_item, "sku": white}, "Choose one of our SKUs."),
    ]
    for form, message in refused:
        post(client, "/channels/tb/mapping/bind", **form)
        shown = flashes(client.get(f"{ADMIN}/channels/tb/mapping").get_data(as_text=True))
        assert len(shown) == 1 and shown[0].startswith(message), (form, shown)
    assert bindings(app, "tb") == {"MUG": (tote, "", "0.5", 2, None)}
    assert audit_actions(app) == ["channels.link"]


def test_auto_bind_by_outer_id_binds_exactly_the_matching_ones(shop, sandbox):
    app = shop
    remote = mapping_shop(app, sandbox)
    client = english(app, "owner")
    assert post(client, "/channels/tb/mapping/auto").status_code == 303
    assert bindings(app, "tb") == {
        code: (*remote[code], "1", 0, None) for code in ("SHIRT-B", "SHIRT-W", "SOCK-M")
    }
    page = client.get(f"{ADMIN}/channels/tb/mapping").get_data(as_text=True)
    assert flashes(page) == [
        "3 SKUs bound by outer id.",
        "Outer ids on several of their SKUs, to map by hand: MUG",
    ]
    assert text(page, "unbound-count") == "4"  # the tote, SOCK-L and both gift boxes
    assert "auto-bind" not in page
    assert audit_actions(app) == ["channels.link"] * 3

    # Again: nothing left to bind; then unlink one.
    post(client, "/channels/tb/mapping/auto")
    assert len(bindings(app, "tb")) == 3
    assert flashes(client.get(f"{ADMIN}/channels/tb/mapping").get_data(as_text=True)) == [
        "0 SKUs bound by outer id.",
        "Outer ids on several of their SKUs, to map by hand: MUG",
    ]
    assert post(client, "/channels/tb/mapping/unlink", sku_code="SHIRT-B").status_code == 303
    assert set(bindings(app, "tb")) == {"SHIRT-W", "SOCK-M"}
    post(client, "/channels/tb/mapping/unlink", sku_code="SHIRT-B")
    assert flashes(client.get(f"{ADMIN}/channels/tb/mapping").get_data(as_text=True)) == [
        "SHIRT-B unlinked.",
        "SHIRT-B is not bound on tb (any more).",
    ]
    assert audit_actions(app) == ["channels.link"] * 3 + ["channels.unlink"]


# -- sync, reconcile, dead letters -----------------------------------------------------------


def test_reconcile_repairs_drift_and_sync_now_runs_the_jobs(shop, sandbox):
    app = shop
    with app.app_context():
        seed_shirts(stock=10)
        linked = link_shop(app, sandbox, "tb")
    sandbox.set_quantity(linked.item.num_iid, 4, linked.sku_id("SHIRT-W"))
    client = english(app, "owner")
    assert post(client, "/channels/tb/reconcile").status_code == 303
    assert linked.quantity("SHIRT-W") == 10
    with app.app_context():
        drift = db(app).execute(select(DriftRecord.published, DriftRecord.expected)).all()
    assert [tuple(row) for row in drift] == [(4, 10)]
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert flashes(page) == ["Reconcile started."]
    assert [cells[1:] for _, cells in rows(page, "drift")] == [["SHIRT-W", "4", "10", "yes"]]

    calls = sandbox.calls["taobao.tmc.messages.consume"]
    assert post(client, "/channels/tb/sync").status_code == 303
    assert sandbox.calls["taobao.tmc.messages.consume"] > calls
    assert post(client, "/channels/tb/pause").status_code == 303
    post(client, "/channels/tb/sync")
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert flashes(page) == [
        "Sync started.",
        "Channel paused.",
        "The channel is paused: resume it first.",
    ]
    assert text(page, "status") == "Working · paused"
    with app.app_context():
        entries = (
            db(app)
            .scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like("channels.%"))
                .order_by(AuditEntry.id)
            )
            .all()
        )
    assert [(e.action, e.after) for e in entries] == [
        ("channels.reconcile", {"jobs": ["reconcile"]}),
        ("channels.sync", {"jobs": ["poll_messages", "import_orders", "push_stock"]}),
        ("channels.set_active", {"active": False}),
    ]


def test_requeue_and_discard_dead_letters(shop, sandbox):
    app = shop
    linked_without_bindings(app, sandbox, "tb")
    with app.app_context():
        tb, tb_b = channels.info("tb").id, channels.info("tb-b").id
        first, second, foreign = record_dead_letters(tb, tb_b)
    client = english(app, "owner")
    assert post(client, "/channels/tb/dead-letters/requeue", letter=first).status_code == 303
    assert post(client, "/channels/tb/dead-letters/discard", letter=second).status_code == 303
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert flashes(page) == ["Sent again.", "Dead letter discarded."]
    assert post(client, "/channels/tb/dead-letters/discard", letter=foreign).status_code == 404
    post(client, "/channels/tb/dead-letters/requeue", letter=first)  # already requeued
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert flashes(page) == [
        "This event was already sent again, handled or discarded; the list is up to date now."
    ]
    assert rows(page, "letters") == [({}, ["No dead letters."])]
    with app.app_context():
        found = db(app).execute(
            select(SyncFailure.id, SyncFailure.status, SyncFailure.resolved_by).order_by(
                SyncFailure.id
            )
        )
        assert [tuple(row) for row in found] == [
            (first, "requeued", "staff:staff:owner@shop.cn"),
            (second, "discarded", "staff:staff:owner@shop.cn"),
            (foreign, "dead", None),
        ]
        # The requeued push ran (inline) and succeeded against the sandbox.
        assert channels.info("tb").last_sync_at is not None
    assert audit_actions(app) == ["channels.requeue", "channels.discard"]


# -- permissions and CSRF --------------------------------------------------------------------


def test_customer_service_cannot_see_nor_change_channels(shop):
    app = shop
    client = login(app, "customer_service")
    assert client.get(f"{ADMIN}/channels").status_code == 403
    for path in ("/channels/tb-a/pause", "/channels/tb-a/sync", "/channels/new"):
        assert post(client, path).status_code == 403, path
    with app.app_context():
        assert channels.info("tb-a").active is True
    assert audit_actions(app) == []
    assert "/shop-admin/channels" not in client.get(f"{ADMIN}/orders").get_data(as_text=True)


def test_a_channel_scoped_member_sees_and_changes_only_their_channel(shop):
    app = shop
    client = english(app, "tbadmin")
    page = client.get(f"{ADMIN}/channels").get_data(as_text=True)
    assert [attrs["data-channel"] for attrs, _ in rows(page, "channels")] == ["tb-a"]
    assert 'id="add-channel"' not in page
    assert client.get(f"{ADMIN}/channels/tb-b").status_code == 404
    assert client.get(f"{ADMIN}/channels/tb-b/import/progress").status_code == 404
    assert post(client, "/channels/tb-b/pause").status_code == 404
    assert post(client, "/channels/tb-b/mapping/unlink", sku_code="KET").status_code == 404
    new = post(
        client, "/channels/new", kind="webhook_erp", name="erp", order_url="http://a.cn", secret="s"
    )
    assert new.status_code == 403
    with app.app_context():
        assert channels.info("tb-b").active is True
        assert db(app).scalar(select(func.count()).where(Channel.name == "erp")) == 0
    assert post(client, "/channels/tb-a/pause").status_code == 303
    with app.app_context():
        assert channels.info("tb-a").active is False
    assert audit_actions(app) == ["channels.set_active"]
    owner = login(app, "owner")
    page = owner.get(f"{ADMIN}/channels").get_data(as_text=True)
    assert [attrs["data-channel"] for attrs, _ in rows(page, "channels")] == ["tb-a", "tb-b"]


def test_a_post_without_the_csrf_token_is_refused(shop):
    app = shop
    client = login(app, "owner")
    for path in ("/channels/tb-a/pause", "/channels/tb-a/mapping/auto", "/channels/new"):
        assert client.post(f"{ADMIN}{path}", data={"kind": "taobao"}).status_code == 400, path
    with app.app_context():
        assert channels.info("tb-a").active is True
    assert audit_actions(app) == []


# -- catalog import --------------------------------------------------------------------------


def test_the_catalog_import_button_runs_it_and_shows_its_progress(shop, sandbox):
    app = shop
    sandbox.seed_demo()
    linked_without_bindings(app, sandbox, "tb")
    client = english(app, "owner")
    progress = client.get(f"{ADMIN}/channels/tb/import/progress").get_json()
    assert (progress["state"], progress["text"]) == ("idle", "Not imported yet.")
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert text(page, "import-progress") == "Not imported yet."
    assert post(client, "/channels/tb/import").status_code == 303
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    done = "Imported 3 items: 3 created, 0 updated, 0 bound, 0 unchanged."
    assert flashes(page) == ["Catalog imported."]
    assert text(page, "import-progress") == done
    assert 'data-state="done"' in page
    progress = client.get(f"{ADMIN}/channels/tb/import/progress").get_json()
    assert {k: progress[k] for k in ("state", "done", "total", "created", "text")} == {
        "state": "done",
        "done": 3,
        "total": 3,
        "created": 3,
        "text": done,
    }
    assert text(page, "settings").endswith("Sign method md5")  # progress is not a setting
    with app.app_context():
        assert db(app).scalar(select(func.count()).select_from(Sku)) == 1 + 5  # KET + imported
    assert audit_actions(app) == ["channels.import_catalog"]

    with app.app_context():
        channels.set_active("tb", False)
    post(client, "/channels/tb/import")
    page = client.get(f"{ADMIN}/channels/tb").get_data(as_text=True)
    assert flashes(page) == ["The channel tb is paused: resume it before importing its items."]
    assert audit_actions(app) == ["channels.import_catalog"]
