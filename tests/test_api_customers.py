"""The CRM through the REST API: customers, their tags, rule tags and segments."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.extension import get_state
from koudai_flask.models import (
    AuditEntry,
    Customer,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    Segment,
    Tag,
    TagHistory,
)
from koudai_flask.services import identities, tags
from tests.api_support import API, OWNER, make_key, seed_shop
from tests.crm_support import add_order

CRM = ["customers.view", "customers.edit", "customers.export"]


@pytest.fixture
def people(app: Flask) -> dict[str, Any]:
    """Ann bought on ``ext`` (tag vip), Bob on ``ext-b``, Cai never; ids in that order."""
    seed_shop(app)
    ann = identities.link_identity("taobao_nick", "ann_tb", name="Ann")
    order = add_order(ann, total=50000, days_ago=3, channel="ext")
    tags.add_tag(ann, "vip")
    bob = identities.link_identity("phone", "13900000001", name="Bob")
    add_order(bob, total=12000, days_ago=40, channel="ext-b")
    cai = identities.link_identity("email", "cai@buyer.cn", name="Cai")
    return {"ann": ann, "bob": bob, "cai": cai, "ann_order_at": order.created_at}


def count(model: Any) -> int:
    return get_state().session.scalar(select(func.count()).select_from(model)) or 0


def ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["items"]]


# -- customers -------------------------------------------------------------------------------


def test_customers_come_in_cursor_pages_with_filters(app, people):
    headers = make_key(app, ["customers.view"])
    client = app.test_client()
    seen, cursor = [], None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = client.get(f"{API}/customers{query}", headers=headers).get_json()
        seen += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [people["cai"], people["bob"], people["ann"]]

    def listed(query: str) -> list[int]:
        response = client.get(f"{API}/customers?{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return ids(response.get_json())

    assert listed("q=bo") == [people["bob"]]
    assert listed("q=buyer.cn") == [people["cai"]]
    assert listed("tag=vip") == [people["ann"]]
    assert listed("tag=nobody") == []
    assert listed("channel=ext-b") == [people["bob"]]
    assert listed("channel=ext&tag=vip&q=an") == [people["ann"]]
    page = client.get(f"{API}/customers?q=ann", headers=headers).get_json()
    assert page == {
        "items": [
            {
                "id": people["ann"],
                "name": "Ann",
                "phone": None,
                "email": None,
                "created_at": page["items"][0]["created_at"],
                "tags": ["vip"],
            }
        ],
        "next_cursor": None,
    }
    unknown = client.get(f"{API}/customers?segment_id=999", headers=headers)
    assert unknown.status_code == 422
    assert unknown.get_json()["errors"] == {"segment_id": ["unknown segment"]}


def test_a_customer_reads_with_identities_tags_and_figures(app, people):
    headers = make_key(app, ["customers.view"])
    client = app.test_client()
    response = client.get(f"{API}/customers/{people['ann']}", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["identities"] == [
        {
            "kind": "taobao_nick",
            "value": "ann_tb",
            "verified": False,
            "created_at": body["identities"][0]["created_at"],
        }
    ]
    assert (body["tags"], body["rule_tags"]) == (["vip"], [])
    last = body["stats"].pop("last_order_at")
    assert last == body["stats"].pop("first_order_at")
    assert last.startswith(people["ann_order_at"].isoformat()[:19])
    # 3 days ago: recency 5; one order: frequency 1; 50000 fen: monetary 3.
    assert body["stats"] == {
        "order_count": 1,
        "total_spent": 50000,
        "rfm_r": 5,
        "rfm_f": 1,
        "rfm_m": 3,
    }
    etag = response.headers["ETag"]
    again = client.get(
        f"{API}/customers/{people['ann']}", headers={**headers, "If-None-Match": etag}
    )
    assert again.status_code == 304
    missing = client.get(f"{API}/customers/999", headers=headers)
    assert missing.status_code == 404
    assert missing.get_json() == {
        "code": "NotFound",
        "message": "unknown customer 999",
        "errors": {},
    }
    assert body["addresses"] == []


def test_a_customer_reads_with_the_address_book_default_first(app, people):
    from koudai_flask.services import customers

    with app.app_context():
        home = {"name": "Ann", "phone": "13800138000", "province": "浙江省", "city": "杭州市"}
        first = customers.add_address(people["ann"], **home, street="文三路 1 号")
        second = customers.add_address(people["ann"], **home, street="龙井路 2 号")
        customers.set_default_address(people["ann"], second.id)
    headers = make_key(app, ["customers.view"])
    body = app.test_client().get(f"{API}/customers/{people['ann']}", headers=headers).get_json()
    assert [(a["id"], a["street"], a["is_default"]) for a in body["addresses"]] == [
        (second.id, "龙井路 2 号", True),
        (first.id, "文三路 1 号", False),
    ]
    assert body["addresses"][0] == {
        "id": second.id,
        "name": "Ann",
        "phone": "13800138000",
        "province": "浙江省",
        "city": "杭州市",
        "district": "",
        "street": "龙井路 2 号",
        "postcode": "",
        "is_default": True,
    }


def test_create_a_customer_once_and_change_their_contact(app, people):
    headers = {**make_key(app, CRM), "Idempotency-Key": "new-customer-1"}
    client = app.test_client()
    body = {
        "name": "  Dan  Wu ",
        "phone": "+86 139-0000-0002",
        "email": "Dan@Buyer.cn",
        "identities": [{"kind": "wechat_openid", "value": "o-dan"}],
    }
    before = count(Customer)
    first = client.post(f"{API}/customers", json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    created = first.get_json()
    assert (created["name"], created["phone"], created["email"]) == (
        "Dan Wu",
        "13900000002",
        "dan@buyer.cn",
    )
    assert [(i["kind"], i["value"]) for i in created["identities"]] == [
        ("wechat_openid", "o-dan"),
        ("phone", "13900000002"),
        ("email", "dan@buyer.cn"),
    ]
    replay = client.post(f"{API}/customers", json=body, headers=headers)
    assert (replay.status_code, replay.get_json()) == (201, created)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert count(Customer) == before + 1

    # Bob's phone is already someone's: nothing is created.
    taken = client.post(
        f"{API}/customers",
        json={"name": "Bob again", "identities": [{"kind": "phone", "value": "13900000001"}]},
        headers=make_key(app, CRM),
    )
    assert taken.status_code == 422
    assert taken.get_json()["errors"] == {"identities": ["phone already known"]}
    bad = client.post(f"{API}/customers", json={"phone": "call me"}, headers=make_key(app, CRM))
    assert bad.status_code == 422
    assert bad.get_json()["errors"] == {"phone": ["invalid"]}
    assert count(Customer) == before + 1

    changed = client.patch(
        f"{API}/customers/{created['id']}",
        json={"name": "Dan", "email": None},
        headers=make_key(app, CRM),
    )
    assert changed.status_code == 200
    assert (changed.get_json()["name"], changed.get_json()["email"]) == ("Dan", None)
    entry = (
        get_state()
        .session.scalars(select(AuditEntry).where(AuditEntry.action == "customers.update"))
        .one()
    )
    assert (entry.before, entry.after) == (
        {"name": "Dan Wu", "email": "dan@buyer.cn"},
        {"name": "Dan", "email": None},
    )
    empty = client.patch(f"{API}/customers/{created['id']}", json={}, headers=make_key(app, CRM))
    assert empty.status_code == 422


def test_adding_a_tag_twice_changes_nothing_the_second_time(app, people):
    headers = make_key(app, CRM)
    client = app.test_client()
    url = f"{API}/customers/{people['bob']}/tags"
    first = client.post(url, json={"tag": "wholesale"}, headers=headers)
    assert first.get_json() == {
        "customer_id": people["bob"],
        "tags": ["wholesale"],
        "changed": True,
    }
    second = client.post(url, json={"tag": "wholesale"}, headers=headers)
    assert second.status_code == 200
    assert second.get_json() == {
        "customer_id": people["bob"],
        "tags": ["wholesale"],
        "changed": False,
    }
    history = (
        get_state()
        .session.scalars(select(TagHistory.action).where(TagHistory.customer_id == people["bob"]))
        .all()
    )
    assert history == ["added"]
    removed = client.delete(f"{url}/wholesale", headers=headers)
    assert removed.get_json() == {"customer_id": people["bob"], "tags": [], "changed": True}
    again = client.delete(f"{url}/wholesale", headers=headers)
    assert again.get_json()["changed"] is False


# -- notes and merges ------------------------------------------------------------------------


def test_notes_are_written_as_the_owner_listed_newest_first_and_audited(app, people):
    headers = make_key(app, CRM)
    client = app.test_client()
    url = f"{API}/customers/{people['bob']}/notes"
    assert client.get(url, headers=headers).get_json() == {"items": []}
    first = client.post(url, json={"body": "Asked for a VAT invoice"}, headers=headers)
    assert first.status_code == 201, first.get_json()
    second = client.post(url, json={"body": "Prefers SF Express\nafter 18:00"}, headers=headers)
    assert second.get_json()["body"] == "Prefers SF Express\nafter 18:00"
    assert first.get_json()["author"] == f"staff:{OWNER}"  # the key owner, as staff notes
    listed = client.get(url, headers=headers).get_json()["items"]
    assert [n["id"] for n in listed] == [second.get_json()["id"], first.get_json()["id"]]
    audited = (
        get_state()
        .session.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "customers.note"))
        .all()
    )
    assert audited == [str(people["bob"])] * 2

    before = count(CustomerNote)
    for body, status in [
        ({"body": ""}, 422),
        ({"body": "x" * 2001}, 422),
        ({"body": "bell\x07"}, 422),
        ({}, 422),
    ]:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == status, body
    read_only = make_key(app, ["customers.view"])
    assert client.post(url, json={"body": "hi"}, headers=read_only).status_code == 403
    assert (
        client.post(
            f"{API}/customers/999999/notes", json={"body": "hi"}, headers=headers
        ).status_code
        == 404
    )
    assert count(CustomerNote) == before


def test_a_merge_moves_the_customer_and_a_split_undoes_it(app, people):
    headers = make_key(app, CRM)
    client = app.test_client()
    ann, bob = people["ann"], people["bob"]
    client.post(f"{API}/customers/{bob}/notes", json={"body": "Bob's note"}, headers=headers)
    merged = client.post(f"{API}/customers/{ann}/merges", json={"source_id": bob}, headers=headers)
    assert merged.status_code == 201, merged.get_json()
    record = merged.get_json()
    assert (record["source_id"], record["target_id"], record["reason"], record["split_at"]) == (
        bob,
        ann,
        "manual",
        None,
    )
    read = client.get(f"{API}/customers/{bob}", headers=headers).get_json()
    assert read["id"] == ann  # Bob now reads as Ann
    assert {(i["kind"], i["value"]) for i in read["identities"]} == {
        ("taobao_nick", "ann_tb"),
        ("phone", "13900000001"),
    }
    assert read["stats"]["order_count"] == 2
    notes = client.get(f"{API}/customers/{ann}/notes", headers=headers).get_json()["items"]
    assert [n["body"] for n in notes] == ["Bob's note"]
    assert ids(client.get(f"{API}/customers", headers=headers).get_json()) == [people["cai"], ann]
    listed = client.get(f"{API}/customers/{ann}/merges", headers=headers).get_json()["items"]
    assert [m["id"] for m in listed] == [record["id"]]

    before = count(CustomerMerge)
    again = client.post(
        f"{API}/customers/{people['cai']}/merges", json={"source_id": bob}, headers=headers
    )
    assert again.status_code == 422
    assert f"merged into customer {ann}" in again.get_json()["message"]
    itself = client.post(f"{API}/customers/{ann}/merges", json={"source_id": ann}, headers=headers)
    assert itself.status_code == 422
    unknown = client.post(
        f"{API}/customers/{ann}/merges", json={"source_id": 999999}, headers=headers
    )
    assert unknown.status_code == 404
    read_only = make_key(app, ["customers.view"])
    refused = client.post(
        f"{API}/customers/{people['cai']}/merges", json={"source_id": ann}, headers=read_only
    )
    assert refused.status_code == 403
    assert count(CustomerMerge) == before

    split = client.post(f"{API}/customers/{ann}/merges/{record['id']}/split", headers=headers)
    assert split.status_code == 200, split.get_json()
    assert split.get_json()["split_at"] is not None
    back = client.get(f"{API}/customers/{bob}", headers=headers).get_json()
    assert back["id"] == bob
    assert back["stats"]["order_count"] == 1
    assert [
        n["body"]
        for n in client.get(f"{API}/customers/{bob}/notes", headers=headers).get_json()["items"]
    ] == ["Bob's note"]
    twice = client.post(f"{API}/customers/{ann}/merges/{record['id']}/split", headers=headers)
    assert twice.status_code == 404
    elsewhere = client.post(
        f"{API}/customers/{people['cai']}/merges/{record['id']}/split", headers=headers
    )
    assert elsewhere.status_code == 404
    actions = (
        get_state()
        .session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.in_(["customers.merge", "customers.split"]))
            .order_by(AuditEntry.id)
        )
        .all()
    )
    assert actions == ["customers.merge", "customers.split"]


def test_a_customers_orders_are_listed_by_customer_id_also_after_a_merge(app, people):
    headers = make_key(app, [*CRM, "orders.view"])
    client = app.test_client()

    def numbers(customer_id: int) -> list[str]:
        response = client.get(f"{API}/orders?customer_id={customer_id}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return [o["number"] for o in response.get_json()["items"]]

    ann, bob = numbers(people["ann"]), numbers(people["bob"])
    assert len(ann) == len(bob) == 1 and ann != bob
    assert numbers(people["cai"]) == []
    assert numbers(999_999) == []
    client.post(
        f"{API}/customers/{people['ann']}/merges",
        json={"source_id": people["bob"]},
        headers=headers,
    )
    assert sorted(numbers(people["bob"])) == sorted(numbers(people["ann"])) == sorted(ann + bob)
    assert client.get(f"{API}/orders?customer_id=0", headers=headers).status_code == 422
    channel_key = make_key(app, ["orders.view"], channels=["ext"])
    limited = client.get(f"{API}/orders?customer_id={people['bob']}", headers=channel_key)
    assert [o["channel"] for o in limited.get_json()["items"]] == ["ext"]  # Ann's, since the merge


def test_a_channel_limited_key_cannot_merge_or_annotate_customers_it_does_not_see(app, people):
    headers = make_key(app, CRM, channels=["ext"])
    client = app.test_client()
    before = count(CustomerMerge), count(CustomerNote)
    for path, body in [
        (f"/customers/{people['ann']}/merges", {"source_id": people["bob"]}),
        (f"/customers/{people['bob']}/merges", {"source_id": people["ann"]}),
        (f"/customers/{people['bob']}/notes", {"body": "hidden"}),
    ]:
        response = client.post(API + path, json=body, headers=headers)
        assert response.status_code == 404, path
    assert client.get(f"{API}/customers/{people['bob']}/notes", headers=headers).status_code == 404
    assert (count(CustomerMerge), count(CustomerNote)) == before


def test_deleting_a_tag_takes_it_off_everyone_and_a_channel_key_may_not(app, people):
    headers = make_key(app, CRM)
    client = app.test_client()
    tags.add_tag(people["bob"], "vip")
    vip = {t["name"]: t for t in client.get(f"{API}/tags", headers=headers).json["items"]}["vip"]
    assert vip["customers"] == 2

    limited = make_key(app, CRM, channels=["ext"])
    refused = client.delete(f"{API}/tags/{vip['id']}", headers=limited)
    assert refused.status_code == 403
    assert "cannot delete a tag" in refused.get_json()["message"]
    assert (
        client.delete(
            f"{API}/tags/{vip['id']}", headers=make_key(app, ["customers.view"])
        ).status_code
        == 403
    )
    assert tags.tags_of(people["ann"]) == tags.tags_of(people["bob"]) == ["vip"]

    deleted = client.delete(f"{API}/tags/{vip['id']}", headers=headers)
    assert deleted.status_code == 204
    assert tags.tags_of(people["ann"]) == tags.tags_of(people["bob"]) == []
    assert "vip" not in [
        t["name"] for t in client.get(f"{API}/tags", headers=headers).json["items"]
    ]
    removed = (
        get_state()
        .session.scalars(
            select(TagHistory.customer_id)
            .where(TagHistory.action == "removed")
            .order_by(TagHistory.customer_id)
        )
        .all()
    )
    assert removed == sorted([people["ann"], people["bob"]])
    assert client.delete(f"{API}/tags/{vip['id']}", headers=headers).status_code == 404
    audited = get_state().session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == "customers.tag_delete")
    )
    assert audited == 1


# -- rule tags -------------------------------------------------------------------------------


def test_a_rule_tag_is_computed_and_a_bad_rule_says_where(app, people):
    headers = make_key(app, CRM)
    client = app.test_client()
    bad = client.post(
        f"{API}/tags", json={"name": "big", "rule": "total_spent >= $5"}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.get_json() == {
        "code": "RuleError",
        "message": "rule: unexpected character '$' (at character 16)",
        "errors": {"rule": ["unexpected character '$'"], "position": 16},
        "reason": "rule_character",
        "detail": {"char": "$", "position": 16},
    }
    assert count(Tag) == 1  # vip only
    made = client.post(
        f"{API}/tags",
        json={"name": "big", "rule": "total_spent >= 20000", "description": "spends"},
        headers=headers,
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["kind"] == "rule"
    listed = client.get(f"{API}/tags", headers=headers).get_json()["items"]
    assert [(t["name"], t["kind"], t["rule"], t["customers"]) for t in listed] == [
        ("big", "rule", "total_spent >= 20000", 1),
        ("vip", "manual", None, 1),
    ]
    refused = client.post(
        f"{API}/customers/{people['ann']}/tags", json={"tag": "big"}, headers=headers
    )
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == {"name": ["rule tag"]}
    read = client.get(f"{API}/customers/{people['ann']}", headers=headers).get_json()
    assert (read["tags"], read["rule_tags"]) == (["big", "vip"], ["big"])


# -- segments --------------------------------------------------------------------------------


def test_segments_count_live_list_members_and_export(app, people):
    headers = make_key(app, CRM)
    client = app.test_client()
    made = client.post(
        f"{API}/segments",
        json={"name": "Spenders", "min_spent_yuan": 100, "rule": "order_count >= 1"},
        headers=headers,
    )
    assert made.status_code == 201, made.get_json()
    segment = made.get_json()
    assert (segment["rule"], segment["count"]) == (
        "total_spent >= 10000 and (order_count >= 1)",
        2,
    )
    assert segment["filters"] == {"min_spent_yuan": "100", "rule": "order_count >= 1"}
    members = client.get(f"{API}/segments/{segment['id']}/members?limit=1", headers=headers)
    page = members.get_json()
    assert ids(page) == [people["bob"]]
    rest = client.get(
        f"{API}/segments/{segment['id']}/members?cursor={page['next_cursor']}", headers=headers
    ).get_json()
    assert (ids(rest), rest["next_cursor"]) == ([people["ann"]], None)
    listed = client.get(f"{API}/customers?segment_id={segment['id']}&tag=vip", headers=headers)
    assert ids(listed.get_json()) == [people["ann"]]

    add_order(people["cai"], total=30000, days_ago=1, channel="ext")
    read = client.get(f"{API}/segments/{segment['id']}", headers=headers).get_json()
    assert read["count"] == 3  # live
    assert [s["name"] for s in client.get(f"{API}/segments", headers=headers).json["items"]] == [
        "Spenders"
    ]

    export = client.get(f"{API}/segments/{segment['id']}/export.csv", headers=headers)
    assert export.status_code == 200
    assert export.mimetype == "text/csv"
    lines = export.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == (
        "id,name,phone,email,order_count,total_spent_yuan,last_order_at,rfm,tags,identities"
    )
    assert [line.split(",")[1] for line in lines[1:]] == ["Ann", "Bob", "Cai"]
    cached = client.get(
        f"{API}/segments/{segment['id']}/export.csv",
        headers={**headers, "If-None-Match": export.headers["ETag"]},
    )
    assert cached.status_code == 304
    assert cached.get_data() == b""
    weakly = client.get(
        f"{API}/segments/{segment['id']}/export.csv",
        headers={**headers, "If-None-Match": "W/" + export.headers["ETag"]},
    )
    assert weakly.status_code == 304  # If-None-Match compares weakly
    tags.add_tag(people["cai"], "changed")  # a new column value: a new body, a new ETag
    changed = client.get(
        f"{API}/segments/{segment['id']}/export.csv",
        headers={**headers, "If-None-Match": export.headers["ETag"]},
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != export.headers["ETag"]
    assert int(changed.headers["Content-Length"]) == len(changed.get_data())
    no_export = client.get(
        f"{API}/segments/{segment['id']}/export.csv",
        headers=make_key(app, ["customers.view", "customers.edit"]),
    )
    assert no_export.status_code == 403


def test_a_segment_is_replaced_and_deleted_by_an_editor_only(app, people):
    headers = make_key(app, CRM)
    client = app.test_client()
    made = client.post(f"{API}/segments", json={"name": "Buyers", "min_orders": 1}, headers=headers)
    other = client.post(f"{API}/segments", json={"name": "Vips", "tag": "vip"}, headers=headers)
    url = f"{API}/segments/{made.get_json()['id']}"

    replaced = client.put(url, json={"name": "Big buyers", "min_spent_yuan": 300}, headers=headers)
    assert replaced.status_code == 200, replaced.get_json()
    body = replaced.get_json()
    assert (body["name"], body["rule"], body["filters"], body["count"]) == (
        "Big buyers",
        "total_spent >= 30000",
        {"min_spent_yuan": "300"},  # min_orders was not sent again: dropped
        1,
    )
    before = client.get(url, headers=headers).get_json()
    for data, status in [
        ({"name": "Vips", "min_orders": 1}, 422),  # another segment's name
        ({"name": "Bad", "rule": "total_spent >>> 1"}, 422),
        ({"min_orders": 1}, 422),  # no name
    ]:
        assert client.put(url, json=data, headers=headers).status_code == status, data
    assert (
        client.put(f"{API}/segments/999999", json={"name": "X"}, headers=headers).status_code == 404
    )
    viewer = make_key(app, ["customers.view"])
    refused = client.put(url, json={"name": "Mine"}, headers=viewer)
    assert refused.status_code == 403
    assert client.delete(url, headers=viewer).status_code == 403
    assert client.get(url, headers=headers).get_json() == before

    deleted = client.delete(url, headers=headers)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert client.get(url, headers=headers).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404
    names = [s["name"] for s in client.get(f"{API}/segments", headers=headers).json["items"]]
    assert names == [other.get_json()["name"]]
    actions = (
        get_state()
        .session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.object_id == str(made.get_json()["id"]))
            .where(AuditEntry.object_type == "segment")
            .order_by(AuditEntry.id)
        )
        .all()
    )
    assert actions == ["customers.segment", "customers.segment", "customers.segment_delete"]


def test_a_segment_rule_error_says_where_and_saves_nothing(app, people):
    headers = make_key(app, CRM)
    client = app.test_client()
    bad = client.post(
        f"{API}/segments", json={"name": "Odd", "rule": "city == 'x' and"}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.get_json()["errors"]["position"] == 16
    assert set(bad.get_json()["errors"]) == {"rule", "position"}
    empty = client.post(f"{API}/segments", json={"name": "Nothing"}, headers=headers)
    assert empty.status_code == 422
    assert empty.get_json()["errors"] == {"rule": ["empty"]}
    assert count(Segment) == 0


def test_a_segment_needs_an_editor_scope_as_staff_do(app, people):
    client = app.test_client()
    body = {"name": "Vips", "tag": "vip"}
    viewer = client.post(f"{API}/segments", json=body, headers=make_key(app, ["customers.view"]))
    assert viewer.status_code == 403
    assert viewer.get_json()["message"] == (
        "this API key lacks the scope 'customers.edit' or 'marketing.manage'"
    )
    marketer = make_key(app, ["customers.view", "marketing.manage"])
    made = client.post(f"{API}/segments", json=body, headers=marketer)
    assert (made.status_code, made.get_json()["count"]) == (201, 1)


# -- channel scope ---------------------------------------------------------------------------


def test_a_channel_limited_key_sees_only_the_customers_of_its_channels(app, people):
    headers = make_key(app, [*CRM, "marketing.manage"], channels=["ext"])
    client = app.test_client()
    assert ids(client.get(f"{API}/customers", headers=headers).get_json()) == [people["ann"]]
    assert client.get(f"{API}/customers?channel=ext-b", headers=headers).json["items"] == []
    for method, path, body in [
        ("GET", f"/customers/{people['bob']}", None),
        ("PATCH", f"/customers/{people['bob']}", {"name": "X"}),
        ("POST", f"/customers/{people['bob']}/tags", {"tag": "x"}),
        ("DELETE", f"/customers/{people['cai']}/tags/x", None),
    ]:
        response = client.open(API + path, method=method, json=body, headers=headers)
        assert response.status_code == 404, (method, path)
    assert tags.tags_of(people["bob"]) == []

    client.post(f"{API}/customers/{people['ann']}/tags", json={"tag": "x"}, headers=headers)
    tags.add_tag(people["bob"], "x")
    counted = {
        t["name"]: t["customers"] for t in client.get(f"{API}/tags", headers=headers).json["items"]
    }
    assert counted == {"vip": 1, "x": 1}  # Bob's x is outside the key's channels
    segment = client.post(
        f"{API}/segments", json={"name": "Any buyer", "min_orders": 1}, headers=headers
    ).get_json()
    assert segment["count"] == 1
    export = client.get(f"{API}/segments/{segment['id']}/export.csv", headers=headers)
    assert [line.split(",")[1] for line in export.get_data(as_text=True).splitlines()[1:]] == [
        "Ann"
    ]

    before = count(Customer), count(CustomerIdentity)
    hidden = client.post(f"{API}/customers", json={"name": "Eve"}, headers=headers)
    assert hidden.status_code == 403
    assert "sees only the customers of its channels" in hidden.get_json()["message"]
    assert (count(Customer), count(CustomerIdentity)) == before


def test_the_same_identity_posted_at_once_makes_one_customer(make_app, postgres_url):
    from tests.test_api_idempotency import concurrently

    app = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_size": 12})
    seed_shop(app)
    headers = make_key(app, CRM)
    body = {"name": "Fan", "identities": [{"kind": "wechat_openid", "value": "o-fan-1"}]}

    def post(_: int) -> tuple[int, Any]:
        response = app.test_client().post(f"{API}/customers", json=body, headers=headers)
        return response.status_code, response.get_json()

    results = concurrently(8, post)
    assert sorted(status for status, _ in results) == [201] + [422] * 7
    assert {str(reply["errors"]) for status, reply in results if status == 422} == {
        "{'identities': ['wechat_openid already known']}"
    }
    with app.app_context():
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
        assert session.scalar(select(func.count()).select_from(CustomerIdentity)) == 1


def test_a_big_export_is_spooled_to_disk_not_held_in_memory(app):
    import hashlib
    import tracemalloc

    from koudai_flask.blueprints.api.spooled import SPOOL_IN_MEMORY, spooled_response

    row = "12345,某位客户 A buyer,13800138000,buyer@example.com,3,129.00,2026-11-25,555,vip,\n"
    count = 200_000  # about 15 MB of CSV
    expected = hashlib.sha1(usedforsecurity=False)
    for _ in range(count):
        expected.update(row.encode())
    with app.test_request_context("/export.csv"):
        tracemalloc.start()
        response = spooled_response((row for _ in range(count)), mimetype="text/csv")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        body = b"".join(response.response)
        response.close()
    assert len(body) == count * len(row.encode()) == response.content_length
    assert response.headers["ETag"] == f'"{expected.hexdigest()}"'
    # Joined in memory it would take the whole 15 MB (twice, with the chunks); spooled, the
    # in-memory part of the file at most.
    assert peak < 2 * SPOOL_IN_MEMORY, peak


def test_the_same_tag_put_on_and_taken_off_at_once_changes_it_once(make_app, postgres_url):
    from tests.test_api_idempotency import concurrently

    app = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_size": 12})
    seed_shop(app)
    headers = make_key(app, CRM)
    with app.app_context():
        buyer = identities.link_identity("phone", "13900000123", name="Hot")
    url = f"{API}/customers/{buyer}/tags"

    def call(method: str, path: str, body: Any = None) -> list[tuple[int, Any]]:
        def one(_: int) -> tuple[int, Any]:
            response = app.test_client().open(path, method=method, json=body, headers=headers)
            return response.status_code, response.get_json()

        return concurrently(8, one)

    def history() -> list[str]:
        with app.app_context():
            rows = get_state().session.scalars(
                select(TagHistory.action)
                .where(TagHistory.customer_id == buyer)
                .order_by(TagHistory.id)
            )
            return list(rows)

    # A new tag, put on by eight requests at once: made once, put on once.
    added = call("POST", url, {"tag": "flash-sale"})
    assert [status for status, _ in added] == [200] * 8, added
    assert sorted(reply["changed"] for _, reply in added) == [False] * 7 + [True]
    with app.app_context():
        assert get_state().session.scalar(select(func.count()).select_from(Tag)) == 1
        assert tags.tags_of(buyer) == ["flash-sale"]
    assert history() == ["added"]

    # Taken off by eight at once: taken off once.
    removed = call("DELETE", f"{url}/flash-sale")
    assert [status for status, _ in removed] == [200] * 8, removed
    assert sorted(reply["changed"] for _, reply in removed) == [False] * 7 + [True]
    with app.app_context():
        assert tags.tags_of(buyer) == []
    assert history() == ["added", "removed"]
