"""The rule language: which customers each rule tags, clear errors, no code execution."""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from koudai_flask.errors import ValidationError
from koudai_flask.extension import get_state
from koudai_flask.jobs import tasks
from koudai_flask.models import Address, AuditEntry, Order, Tag, TagHistory
from koudai_flask.services import (
    catalog,
    channels,
    identities,
    orders,
    rule_tags,
    staff,
    tag_rules,
    tags,
)
from koudai_flask.services.customer_stats import stats_of
from tests.crm_support import add_order, events

pytestmark = pytest.mark.services_only


@pytest.fixture
def people(app: Any) -> dict[str, int]:
    """Five customers whose figures the rule table below is written against."""
    channels.create("taobao", "tb-main", settings={})
    staff.grant("boss", "owner")
    big = identities.link_identity("taobao_nick", "big_buyer")
    add_order(big, total=60000, days_ago=5, channel="tb-main", city="杭州")
    old = identities.link_identity("web", "user-old")
    add_order(old, total=20000, days_ago=100, city="北京")
    tags.add_tag(old, "vip")
    fan = identities.link_identity("wechat_openid", "o-fan")
    session = get_state().session
    session.add(Address(customer_id=fan, name="Fan", phone="1", city="上海", street="x"))
    session.commit()
    refunded = identities.link_identity("email", "r@buyer.cn")
    add_order(refunded, total=80000, days_ago=2, status="refunded")
    add_order(refunded, total=3000, days_ago=400, status="completed", refunded=1000)
    pending = identities.link_identity("taobao_nick", "pending_buyer")
    add_order(pending, total=99999, days_ago=1, channel="tb-main", status="pending_payment")
    return {"big": big, "old": old, "fan": fan, "refunded": refunded, "pending": pending}


RULES = [
    ('total_spent >= 50000 and days_since_last_order <= 30 and channel == "taobao"', {"big"}),
    ("total_spent >= 50000", {"big"}),
    ("total_spent == 2000", {"refunded"}),
    ("order_count == 0", {"fan", "pending"}),
    ("order_count >= 1 and not total_spent > 20000", {"old", "refunded"}),
    ("days_since_last_order <= 30", {"big"}),
    ("days_since_last_order > 30", {"old", "refunded"}),
    ("not days_since_last_order <= 30", {"old", "refunded", "fan", "pending"}),
    ("days_since_last_order == 100", {"old"}),
    ('channel == "tb-main"', {"big"}),
    ('channel != "taobao"', {"old", "fan", "refunded", "pending"}),
    ('channel in ("web", "taobao")', {"big", "old", "refunded"}),
    ('city == "北京" or city == "上海"', {"old", "fan"}),
    ('city not in ("杭州")', {"old", "fan", "refunded", "pending"}),
    ('tag == "vip"', {"old"}),
    ('identity == "wechat_openid" or identity == "email"', {"fan", "refunded"}),
    ("rfm_r == 5 and rfm_f == 1 and rfm_m == 3", {"big"}),
    ("rfm_r == 3 and rfm_m == 2", {"old"}),
    ("rfm_r == 1 and rfm_m == 1", {"refunded"}),
    ("rfm_r == 0", {"fan", "pending"}),
    ("rfm_f in (1, 2)", {"big", "old", "refunded"}),
    ("created_days <= 1", {"big", "old", "fan", "refunded", "pending"}),
    ("(order_count > 0 or tag == 'vip') and not (channel == 'taobao')", {"old", "refunded"}),
]


def run_rule(rule: str, people: dict[str, int]) -> set[str]:
    names = {v: k for k, v in people.items()}
    ids = get_state().session.scalars(tag_rules.matching(rule)).all()
    return {names[i] for i in ids}


@pytest.mark.parametrize(("rule", "expected"), RULES, ids=[r for r, _ in RULES])
def test_each_rule_tags_exactly_its_customers(people, rule, expected):
    assert run_rule(rule, people) == expected


def test_dates_are_days_in_the_shops_time_zone(people):
    session = get_state().session
    last = session.scalar(
        select(func.max(Order.created_at)).where(Order.customer_id == people["old"])
    )
    day = last.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert run_rule(f'last_order_date == "{day}"', people) == {"old"}
    assert run_rule(f'last_order_date < "{day}"', people) == {"refunded"}
    assert run_rule(f'last_order_date > "{day}"', people) == {"big"}  # the refunded one counts not


def test_figures_of_one_customer(people):
    stats = stats_of(people["refunded"])
    assert (stats.order_count, stats.total_spent, stats.rfm_r, stats.rfm_f, stats.rfm_m) == (
        1,
        2000,
        1,
        1,
        1,
    )
    assert stats_of(people["fan"]).order_count == 0


BAD_RULES = [
    ("", "the rule is empty"),
    ("total_spent >=", "total_spent is compared with a whole number"),
    ("total_spent => 5", "unexpected character '='"),
    ("total_spent 5", "expected a comparison such as == or >="),
    ("spend > 5", "unknown field 'spend'"),
    ('total_spent > "5"', "total_spent is compared with a whole number"),
    ("channel > 'web'", "channel takes only ==, !=, in and not in"),
    ("channel == web", "channel is compared with text in quotes"),
    ("tag == 'vip", "text that is never closed"),
    ("order_count > 1 and", "expected a field name"),
    ("order_count > 1 order_count > 2", "expected 'and', 'or' or the end"),
    ("(order_count > 1", "expected ')'"),
    ("order_count > 99999999999999", "too large"),
    ('city == "a\x00b"', "a text value cannot hold control characters"),
    ('city == "a\nb"', "a text value cannot hold control characters"),  # a line break
    ('last_order_date > "yesterday"', 'takes a date as "YYYY-MM-DD"'),
    ('created_date < "9999-12-31"', "between the years 1900 and 2200"),
    ("days_since_first_order > 36501", "a number of days is at most 36500"),
    ("order_count not 5", "expected 'in'"),
    ("order_count in ()", "whole number"),
    ("__import__('os').system('x')", "unexpected character '.'"),
    ("__import__ == 'os'", "unknown field '__import__'"),
    ("order_count > 1; drop table koudai_tag", "unexpected character ';'"),
    ("not " * 30 + "order_count > 1", "nests at most 20 deep"),
    ("order_count > 1 or " * 60 + "order_count > 1", "at most 1000 characters"),
]


@pytest.mark.parametrize(("rule", "message"), BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_a_bad_rule_is_a_clear_error_and_saves_nothing(app, rule, message):
    staff.grant("boss", "owner")
    with pytest.raises(tag_rules.RuleError, match="rule: .*" + re.escape(message)):
        tag_rules.parse(rule)
    with pytest.raises(ValidationError) as raised:
        rule_tags.save_rule_tag("boss", "big spenders", rule or " ")
    assert raised.value.messages["rule"]
    session = get_state().session
    assert session.scalar(select(func.count()).select_from(Tag)) == 0
    assert (
        session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "customers.tag")
        )
        == 0
    )


def test_errors_say_where(app):
    with pytest.raises(tag_rules.RuleError) as raised:
        tag_rules.parse("order_count > 1 and spend > 5")
    assert raised.value.position == 20
    assert "(at character 21)" in raised.value.message


# -- no code execution ---------------------------------------------------------------------


@contextmanager
def no_eval() -> Iterator[None]:
    """Python's own evaluators refuse to run while the rule language works."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the rule language must never evaluate Python")

    saved = builtins.eval, builtins.exec, builtins.compile
    builtins.eval, builtins.exec, builtins.compile = refuse, refuse, refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        builtins.eval, builtins.exec, builtins.compile = saved


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_random_text_parses_or_fails_cleanly(text):
    try:
        with no_eval():
            tag_rules.parse(text)
    except tag_rules.RuleError as exc:
        assert exc.message.startswith("rule: ")


ALPHABET = st.sampled_from(
    list(tag_rules.FIELDS)
    + ["and", "or", "not", "in", "(", ")", ",", "==", "!=", "<", "<=", ">", ">=", "5", "0"]
    + ['"taobao"', "'2026-01-01'", '"__import__"', "os", "system", ".", ";", "'", '"', "\\"]
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ALPHABET, max_size=14).map(" ".join))
def test_token_soup_never_runs_code_and_valid_rules_run_as_sql(app, tmp_path, soup):
    marker = Path(tmp_path) / "pwned"
    soup = soup.replace("os system", f"__import__('os').system('touch {marker}')")
    try:
        with no_eval():
            tag_rules.parse(soup)
        query = tag_rules.matching(soup)
    except tag_rules.RuleError:
        return
    finally:
        assert not marker.exists()
    ids = get_state().session.scalars(query).all()
    assert isinstance(ids, list)
    assert not marker.exists()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.recursive(
        st.one_of(
            st.builds(
                "{} {} {}".format,
                st.sampled_from(["total_spent", "order_count", "rfm_r", "days_since_last_order"]),
                st.sampled_from(tag_rules.OPERATORS),
                st.integers(min_value=0, max_value=10**6),
            ),
            st.builds(
                "{} {} {}".format,
                st.sampled_from(["channel", "city", "tag", "identity"]),
                st.sampled_from(["==", "!="]),
                st.text(max_size=8).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
            ),
        ),
        lambda inner: st.one_of(
            st.builds("({}) and ({})".format, inner, inner),
            st.builds("({}) or ({})".format, inner, inner),
            inner.map("not ({})".format),
        ),
        max_leaves=6,
    )
)
def test_generated_rules_compile_and_run_on_the_database(app, rule):
    try:
        with no_eval():
            tag_rules.parse(rule)
        query = tag_rules.matching(rule)
    except tag_rules.RuleError as exc:
        # Only the limits a generated rule may cross: control characters, huge day counts.
        assert "control characters" in exc.message or "days is at most" in exc.message
        return
    assert get_state().session.scalars(query).all() == []


# -- recompute -------------------------------------------------------------------------------


def test_rule_tags_follow_orders_refunds_and_the_clock(app):
    staff.grant("boss", "owner")
    catalog.create_product(title="Tea", skus=[{"code": "TEA", "price": 30000, "stock": 20}])
    buyer = identities.link_identity("web", "user-1")
    tag = rule_tags.save_rule_tag(
        "boss", "big recent", "total_spent >= 50000 and days_since_last_order <= 30"
    )
    assert tags.tags_of(buyer) == []

    order = orders.place(channel="web", lines=[{"sku": "TEA", "quantity": 2}], customer=buyer)
    assert tags.tags_of(buyer) == []  # placed, not paid: not counted
    orders.mark_paid(order.number, amount=order.total, transaction_id="t-1", provider="offline")
    assert tags.tags_of(buyer) == ["big recent"]  # order.paid recomputed the buyer's tags
    assert events("customer.tagged") == [{"customer_id": buyer, "tag": "big recent"}]
    # Rule tags belong to their rule.
    with pytest.raises(ValidationError, match="computed by its rule"):
        tags.remove_tag(buyer, "big recent")

    orders.refund(order.number, amount=20000, reason="broken cup", idempotency_key="r-1")
    assert tags.tags_of(buyer) == []  # 40000 left: below the rule (order.partially_refunded)
    session = get_state().session
    history = session.scalars(
        select(TagHistory.action).where(TagHistory.customer_id == buyer).order_by(TagHistory.id)
    ).all()
    assert history == ["added", "removed"]
    assert session.get(Tag, tag.id).rule is not None


def test_the_nightly_job_catches_the_days_that_passed(app):
    staff.grant("boss", "owner")
    buyer = identities.link_identity("web", "user-2")
    order = add_order(buyer, total=100, days_ago=29)
    rule_tags.save_rule_tag("boss", "recent", "days_since_last_order <= 29")
    assert tags.tags_of(buyer) == ["recent"]
    session = get_state().session
    session.get(Order, order.id).created_at = order.created_at - timedelta(days=2)
    session.commit()
    assert tasks.recompute_rule_tags() == 1
    assert tags.tags_of(buyer) == []
    assert tasks.recompute_rule_tags() == 0  # safe to run twice
