"""A field that marshmallow refused is shown in the reader's language: the messages of the
validators koudai uses, as this marshmallow writes them, and the shop's registration page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from marshmallow import Schema, ValidationError, fields, validate

from koudai_flask import Koudai
from koudai_flask.blueprints.field_messages import _FIXED, field_refusal, problem_text
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import ValidationError as KoudaiValidationError


class Everything(Schema):
    """One field per kind of refusal koudai's schemas can make."""

    required = fields.String(required=True)
    not_null = fields.String(allow_none=False)
    text = fields.String()
    number = fields.Integer(strict=True)
    email = fields.Email()
    flag = fields.Boolean()
    url = fields.Url()
    longest = fields.String(validate=validate.Length(max=60))
    shortest = fields.String(validate=validate.Length(min=8))
    between = fields.String(validate=validate.Length(min=1, max=60))
    at_least = fields.Integer(validate=validate.Range(min=0))
    above = fields.Integer(validate=validate.Range(min=0, min_inclusive=False))
    at_most = fields.Integer(validate=validate.Range(max=99))
    in_range = fields.Integer(validate=validate.Range(min=1, max=99))
    choice = fields.String(validate=validate.OneOf(["web", "taobao"]))
    pattern = fields.String(validate=validate.Regexp(r"^\d+$"))


BAD = {
    "not_null": None,
    "text": 5,
    "number": "five",
    "email": "a@b",
    "flag": "perhaps",
    "url": "not a url",
    "longest": "x" * 61,
    "shortest": "short",
    "between": "",
    "at_least": -1,
    "above": 0,
    "at_most": 100,
    "in_range": 0,
    "choice": "weibo",
    "pattern": "12a",
    "unknown": 1,
}


@pytest.fixture
def site() -> Flask:
    app = Flask("field_messages")
    app.config.update(SECRET_KEY="x", KOUDAI_DATABASE_URI="sqlite://")
    Koudai(app)
    return app


def refusals() -> dict[str, str]:
    """Every field's message, as this marshmallow words it."""
    with pytest.raises(ValidationError) as caught:
        Everything().load(BAD)
    messages: dict[str, Any] = caught.value.messages  # type: ignore[assignment]
    assert set(messages) == {*BAD, "required"}  # every bad value was refused
    return {name: text[0] for name, text in messages.items()}


def test_every_message_of_this_marshmallow_is_said_in_chinese_and_english(site):
    for language, script in (("zh-CN", re.compile(r"[\u4e00-\u9fff]")), ("en", None)):
        with site.test_request_context(headers={"Accept-Language": language}):
            for name, message in refusals().items():
                said = problem_text(message)
                assert said is not None, (name, message)
                if script is not None:
                    assert script.search(said), (name, said)
                else:
                    assert said[0].islower() and said.endswith("."), (name, said)


def test_koudai_validators_own_messages_are_known_too(site):
    with site.test_request_context(headers={"Accept-Language": "zh-CN"}):
        for message in _FIXED:
            said = problem_text(message)
            assert said is not None and re.search(r"[\u4e00-\u9fff]", said), message


def test_a_field_is_named_by_its_label_and_its_figures_kept(site):
    with site.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert field_refusal({"name": ["Longer than maximum length 60."]}) == "名称最多 60 个字符。"
        nested = {"skus": {"2": {"price": ["Must be greater than or equal to 0."]}}}
        assert field_refusal(nested) == "单价不能小于 0。"
        assert field_refusal({"_schema": ["Not a valid integer."]}) == "必须是整数。"
        unnamed = field_refusal({"wms_co_id": ["Missing data for required field."]})
        assert unnamed == "wms_co_id为必填项。"
    with site.test_request_context(headers={"Accept-Language": "en"}):
        assert field_refusal({"phone": ["a mainland mobile number, 11 digits"]}) == (
            "Phone must be a mainland mobile number of 11 digits."
        )
        assert field_refusal({"choice": ["Must be one of: web, taobao."]}) == (
            "choice must be one of: web, taobao."
        )


def test_a_message_koudai_does_not_know_keeps_the_service_sentence(site):
    error = KoudaiValidationError(
        "invalid order: lines: at most 50 lines", {"lines": ["at most 50 lines"]}
    )
    with site.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert field_refusal(error.messages) is None
        assert refusal_text(error) == "invalid order: lines: at most 50 lines"
        assert refusal_text(KoudaiValidationError("no such coupon")) == "no such coupon"


TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.mark.parametrize(
    ("login", "chinese", "english"),
    [
        ("12345", "手机号必须是 11 位中国大陆手机号码。", "Phone must be a mainland mobile number"),
        ("li@", "邮箱不是有效的地址。", "Email is not a valid address."),
    ],
)
def test_registering_with_a_bad_login_says_why_in_the_buyers_language(
    make_app, database_url, login, chinese, english
):
    app = make_app(database_url)
    for lang, expected in (("", chinese), ("?lang=en", english)):
        client = app.test_client()
        page = client.get(f"/shop/account/register{lang}").get_data(as_text=True)
        token = TOKEN.search(page).group(1)
        answer = client.post(
            "/shop/account/register",
            data={"login": login, "password": "long-enough-1", "name": "李雷", "csrf_token": token},
        )
        assert answer.status_code == 422
        html = answer.get_data(as_text=True)
        assert expected in html and "invalid registration" not in html


def test_every_reason_a_service_names_is_said_with_its_figures(site):
    """A ``reason=`` in the code without words in ``_REASONS`` would show English."""
    from pathlib import Path

    from koudai_flask.blueprints.refusals import _REASONS

    package = Path(__file__).parent.parent / "koudai_flask"
    named = {
        found
        for path in package.rglob("*.py")
        for found in re.findall(r'\breason\s*=\s*"(\w+)"', path.read_text(encoding="utf-8"))
    }
    # Not refusals: a stock movement's reason, a customer merge's.
    other_reasons = {
        "delivery",
        "adjustment",
        "count",
        "reservation",
        "shipment",
        "manual",
        "return",
    }
    assert named - other_reasons - set(_REASONS) == set()
    refused = KoudaiValidationError(
        "order KD1: 1250 fen can be refunded",
        reason="refund_too_much",
        detail={"number": "KD1", "refundable_fen": 1250},
    )
    with site.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert refusal_text(refused) == "最多还可退款 ¥12.50。"
        for reason, words in _REASONS.items():
            said = refusal_text(KoudaiValidationError("x", reason=reason))
            assert "%(" not in said and re.search(r"[\u4e00-\u9fff]", said), (reason, words)
    with site.test_request_context(headers={"Accept-Language": "en"}):
        assert refusal_text(refused) == "At most ¥12.50 can still be refunded."
