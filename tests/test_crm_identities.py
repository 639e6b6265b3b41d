"""One customer across channels: automatic merges on strong keys only, manual merge/split."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from koudai_flask.errors import NotFound, PermissionDenied, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import (
    AuditEntry,
    Customer,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    Order,
    Tag,
    TagHistory,
)
from koudai_flask.services import backoffice, channels, customers, identities, merges, staff, tags
from tests.crm_support import add_order, events, race


def kinds_of(customer_id: int) -> set[tuple[str, str]]:
    session = get_state().session
    session.expire_all()
    return {
        (i.kind, i.value)
        for i in session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id)
        )
    }


def count(model: type) -> int:
    return int(get_state().session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_new_identity_creates_a_customer_once(app):
    first = identities.link_identity("wechat_openid", " oA1 ", name="Li Lei")
    again = identities.link_identity("wechat_openid", "oA1")
    assert first == again
    assert customers.get(first).name == "Li Lei"
    assert kinds_of(first) == {("wechat_openid", "oA1")}
    assert events("customer.created") == [{"customer_id": first}]


def test_linking_to_a_given_customer_fills_contacts(app):
    owner = identities.link_identity("web", "user-7")
    assert identities.link_identity("phone", "138 0013-8000", customer_id=owner) == owner
    assert identities.link_identity("email", "Li@Shop.CN", customer_id=owner) == owner
    customer = customers.get(owner)
    assert (customer.phone, customer.email) == ("13800138000", "li@shop.cn")
    assert kinds_of(owner) == {("web", "user-7"), ("phone", "13800138000"), ("email", "li@shop.cn")}


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("fax", "123", "unknown identity kind"),
        ("phone", "not a phone", "is not a phone number"),
        ("email", "nobody", "is not an e-mail address"),
        ("weibo_uid", "   ", "1 to 128 printable characters"),
        ("taobao_nick", "x" * 129, "1 to 128 printable characters"),
        ("taobao_nick", "a\x00b", "1 to 128 printable characters"),
    ],
)
def test_bad_identities_are_refused_and_change_nothing(app, kind, value, message):
    with pytest.raises(ValidationError, match=message):
        identities.link_identity(kind, value)
    assert count(Customer) == 0
    assert count(CustomerIdentity) == 0


def test_the_same_unionid_merges_into_the_customer_acting_and_moves_everything(app):
    follower = identities.link_identity("wechat_openid", "o-1", name="From WeChat")
    account = identities.link_identity("web", "user-1")
    add_order(follower, total=5000)
    tags.add_tag(follower, "wechat fan")
    tags.add_tag(account, "site")
    assert identities.link_identity("wechat_unionid", "U-1", customer_id=follower) == follower

    assert identities.link_identity("wechat_unionid", "U-1", customer_id=account) == account

    assert identities.resolve(follower) == account
    assert kinds_of(account) == {
        ("web", "user-1"),
        ("wechat_openid", "o-1"),
        ("wechat_unionid", "U-1"),
    }
    session = get_state().session
    assert session.scalars(select(Order.customer_id)).all() == [account]
    assert tags.tags_of(account) == ["site", "wechat fan"]
    assert customers.get(account).name == "From WeChat"  # the blank name was filled in
    merge = session.scalars(select(CustomerMerge)).one()
    assert (merge.source_id, merge.target_id, merge.reason, merge.actor) == (
        follower,
        account,
        "wechat_unionid",
        "system",
    )
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "customers.merge")).one()
    assert audit.actor == "system"
    assert audit.before == {"source_id": follower, "target_id": account}
    assert events("customer.merged") == [
        {"customer_id": account, "merged_id": follower, "reason": "wechat_unionid"}
    ]
    owner = staff.grant("boss", "owner")
    listed = session.scalars(backoffice.customer_query(owner)).all()
    assert [c.id for c in listed] == [account]  # the merged-away customer is gone from lists


def test_a_phone_merges_only_when_both_sides_verified_it(app):
    first = identities.link_identity("web", "user-1")
    second = identities.link_identity("web", "user-2")
    identities.link_identity("phone", "13900000001", customer_id=first, verified=True)

    # An unverified claim is weak: the owner stays, nothing merges.
    assert identities.link_identity("phone", "13900000001", customer_id=second) == first
    assert count(CustomerMerge) == 0

    assert (
        identities.link_identity("phone", "13900000001", customer_id=second, verified=True)
        == second
    )
    assert identities.resolve(first) == second
    assert ("phone", "13900000001") in kinds_of(second)


def test_a_verified_phone_takes_over_a_phone_only_typed_in(app):
    typed = identities.link_identity("phone", "13900000002")
    prover = identities.link_identity("web", "user-3")
    assert (
        identities.link_identity("phone", "13900000002", customer_id=prover, verified=True)
        == prover
    )
    assert count(CustomerMerge) == 0
    assert kinds_of(typed) == set()
    assert {(i.kind, v) for i, v in identities.identities_of(prover)} == {
        ("web", False),
        ("phone", True),
    }
    assert customers.get(typed).phone is None
    assert customers.get(prover).phone == "13900000002"
    moved = (
        get_state()
        .session.scalars(select(AuditEntry).where(AuditEntry.action == "customers.identity_moved"))
        .one()
    )
    assert moved.before == {"customer_id": typed, "kind": "phone"}


@pytest.mark.parametrize(
    ("kind", "value"),
    [("email", "same@buyer.cn"), ("taobao_nick", "tb_buyer"), ("weibo_uid", "555")],
)
def test_weak_keys_never_merge(app, kind, value):
    first = identities.link_identity(kind, value)
    second = identities.link_identity("web", "user-9")
    assert identities.link_identity(kind, value, customer_id=second, verified=True) == first
    assert count(CustomerMerge) == 0
    assert kinds_of(second) == {("web", "user-9")}
    assert kinds_of(first) == {(kind, value)}


def test_unionid_through_the_older_customers_api_merges_too(app):
    first = identities.link_identity("wechat_openid", "o-5")
    identities.link_identity("wechat_unionid", "U-5", customer_id=first)
    account = customers.for_user("host-5")
    identity = customers.link_identity(account.id, "wechat_unionid", "U-5")
    assert identity.customer_id == account.id
    assert identities.resolve(first) == account.id


def test_a_merged_host_user_is_found_through_the_merge(app):
    one = customers.for_user("host-a").id
    two = customers.for_user("host-b").id
    identities.link_identity("wechat_unionid", "U-9", customer_id=one)
    identities.link_identity("wechat_unionid", "U-9", customer_id=two)
    assert customers.for_user("host-a").id == two


# -- staff: manual merge and split --------------------------------------------------------


@pytest.fixture
def shop(app):
    staff.grant("boss", "owner")
    staff.grant("viewer", "viewer")
    channels.create("taobao", "tb-a", settings={})
    channels.create("taobao", "tb-b", settings={})
    staff.grant("agent", "customer_service", channels=["tb-a"])
    return app


def test_manual_merge_and_split_move_rows_back_and_are_audited(shop):
    session = get_state().session
    a = identities.link_identity("taobao_nick", "nick_a", name="A")
    b = identities.link_identity("phone", "13700000000", name="B")
    order_a = add_order(a, total=1200).id
    add_order(b, total=3400)
    tags.add_tag(a, "vip")
    tags.add_tag(b, "vip")
    tags.add_tag(a, "taobao")
    session.add(CustomerNote(customer_id=a, author="staff:boss", body="called"))
    session.commit()

    record = merges.merge("boss", a, b)

    session.expire_all()
    assert kinds_of(b) == {("taobao_nick", "nick_a"), ("phone", "13700000000")}
    assert session.get(Order, order_a).customer_id == b
    assert tags.tags_of(b) == ["taobao", "vip"]
    assert session.scalars(select(CustomerNote.customer_id)).all() == [b]

    source = merges.split("boss", record.id)

    session.expire_all()
    assert source.id == a
    assert identities.resolve(a) == a
    assert kinds_of(a) == {("taobao_nick", "nick_a")}
    assert kinds_of(b) == {("phone", "13700000000")}
    assert session.get(Order, order_a).customer_id == a
    assert tags.tags_of(a) == ["taobao", "vip"]
    assert tags.tags_of(b) == ["vip"]
    assert session.scalars(select(CustomerNote.customer_id)).all() == [a]
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.actor == "staff:boss").order_by(AuditEntry.id)
    ).all()
    assert actions == ["customers.merge", "customers.split"]
    with pytest.raises(NotFound):
        merges.split("boss", record.id)  # a merge is split once


def test_manual_merge_needs_permission_and_scope_and_changes_nothing(shop):
    web_buyer = identities.link_identity("web", "u-web")
    add_order(web_buyer, total=100, channel="web")
    tb_buyer = identities.link_identity("taobao_nick", "nick_tb")
    add_order(tb_buyer, total=100, channel="tb-a")
    before = count(AuditEntry)
    with pytest.raises(PermissionDenied):
        merges.merge("viewer", web_buyer, tb_buyer)
    with pytest.raises(NotFound):  # the agent sees only tb-a's customers
        merges.merge("agent", web_buyer, tb_buyer)
    with pytest.raises(ValidationError):
        merges.merge("boss", tb_buyer, tb_buyer)
    assert count(CustomerMerge) == 0
    assert count(AuditEntry) == before
    assert identities.resolve(web_buyer) == web_buyer


def test_split_off_one_identity_into_its_own_customer(shop):
    owner = identities.link_identity("web", "u-1")
    identities.link_identity("phone", "13600000000", customer_id=owner)
    phone_id = get_state().session.scalar(
        select(CustomerIdentity.id).where(CustomerIdentity.kind == "phone")
    )
    fresh = merges.detach_identity("boss", owner, phone_id)
    assert kinds_of(fresh.id) == {("phone", "13600000000")}
    assert kinds_of(owner) == {("web", "u-1")}
    assert customers.get(owner).phone is None
    web_id = get_state().session.scalar(
        select(CustomerIdentity.id).where(CustomerIdentity.kind == "web")
    )
    with pytest.raises(ValidationError, match="only identity"):
        merges.detach_identity("boss", owner, web_id)
    audit = (
        get_state()
        .session.scalars(select(AuditEntry).where(AuditEntry.action == "customers.split_identity"))
        .one()
    )
    assert audit.after == {"customer_id": fresh.id}


def test_a_host_user_merged_into_a_customer_without_one_moves_and_a_split_gives_it_back(shop):
    session = get_state().session
    host = customers.for_user("host-7").id
    wechat = identities.link_identity("wechat_openid", "o-7", name="WeChat buyer")
    record = merges.merge("boss", host, wechat)
    session.expire_all()
    assert (customers.get(wechat).user_id, customers.get(host).user_id) == ("host-7", None)
    assert customers.for_user("host-7").id == wechat
    merges.split("boss", record.id)
    session.expire_all()
    assert (customers.get(host).user_id, customers.get(wechat).user_id) == ("host-7", None)
    assert customers.for_user("host-7").id == host


def test_a_host_login_split_off_takes_its_user_with_it(shop):
    owner = customers.for_user("host-8").id
    identities.link_identity("phone", "13500000000", customer_id=owner)
    web_id = get_state().session.scalar(
        select(CustomerIdentity.id).where(CustomerIdentity.kind == "web")
    )
    fresh = merges.detach_identity("boss", owner, web_id)
    get_state().session.expire_all()
    assert kinds_of(fresh.id) == {("web", "host-8")}
    assert (customers.get(fresh.id).user_id, customers.get(owner).user_id) == ("host-8", None)
    assert customers.for_user("host-8").id == fresh.id


def test_a_buyer_logged_in_with_our_own_account_follows_a_merge(shop):
    from tests.shop_client import ShopClient

    a = customers.register(password="buyer-pass-1", email="a@buyers.cn", name="A").id
    b = identities.link_identity("phone", "13700000001", name="B")
    order_b = add_order(b, total=2500).number
    client = ShopClient(shop)
    client.post("/account/login", {"login": "a@buyers.cn", "password": "buyer-pass-1"})
    assert order_b not in client.text("/orders")

    merges.merge("boss", a, b)

    assert order_b in client.text("/orders")  # the same session now stands for B
    with client.client.session_transaction() as session:
        assert session["koudai_customer_id"] == b


def _two_customers(app) -> tuple[int, int]:
    with app.app_context():
        staff.grant("boss", "owner")
        a = identities.link_identity("taobao_nick", "race_a", name="A")
        b = identities.link_identity("phone", "13700000099", name="B")
    return a, b


def test_two_merges_of_the_same_customers_at_once_never_make_a_cycle(make_app, postgres_url):
    """A into B while B into A: the second waits for the first's lock, then is refused."""
    app = make_app(postgres_url)
    a, b = _two_customers(app)
    second = race(
        app,
        lambda: merges.merge_into(a, b, reason="manual", actor="staff:boss"),
        lambda: merges.merge("boss", b, a),
        "koudai_customer",
    )
    assert isinstance(second, ValidationError)
    with app.app_context():
        merged = get_state().session.execute(
            select(CustomerMerge.source_id, CustomerMerge.target_id)
        )
        assert merged.all() == [(a, b)]
        assert identities.resolve(b) == b and identities.resolve(a) == b


def test_two_splits_of_one_merge_at_once_split_it_once(make_app, postgres_url):
    app = make_app(postgres_url)
    a, b = _two_customers(app)
    with app.app_context():
        merge_id = merges.merge("boss", a, b).id
    second = race(
        app,
        lambda: merges.split("boss", merge_id),
        lambda: merges.split("boss", merge_id),
        "koudai_customer_merge",
    )
    assert isinstance(second, NotFound)
    with app.app_context():
        splits = get_state().session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "customers.split")
        )
        assert splits == 1


def test_a_segment_or_a_tag_deleted_twice_at_once_is_deleted_once(make_app, postgres_url):
    from koudai_flask.services import rule_tags, segments

    app = make_app(postgres_url)
    with app.app_context():
        staff.grant("boss", "owner")
        segment_id = segments.save("boss", {"min_orders": "1"}, name="Buyers").id
        buyer = identities.link_identity("phone", "13700000097", name="T")
        tags.add_tag(buyer, "doomed")
        tag_id = get_state().session.scalar(select(Tag.id).where(Tag.name == "doomed"))
    for delete, table in [
        (lambda: segments.delete("boss", segment_id), "koudai_segment"),
        (lambda: rule_tags.delete_tag("boss", tag_id), "koudai_tag"),
    ]:
        assert isinstance(race(app, delete, delete, table), NotFound), table
    with app.app_context():
        session = get_state().session
        deletes = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.in_(["customers.segment_delete", "customers.tag_delete"]))
            .order_by(AuditEntry.id)
        )
        assert deletes.all() == ["customers.segment_delete", "customers.tag_delete"]
        removals = session.scalars(select(TagHistory.action).where(TagHistory.customer_id == buyer))
        assert sorted(removals) == ["added", "removed"]
