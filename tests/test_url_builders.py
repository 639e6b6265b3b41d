"""The suite's shared URL builders (tests/url_builders.py) build what Werkzeug's own do."""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.routing import FloatConverter, IntegerConverter, Rule, UUIDConverter

from tests.url_builders import compile_fresh


def _sample(converter: Any) -> object:
    if isinstance(converter, IntegerConverter):
        return 7
    if isinstance(converter, FloatConverter):
        return 1.5
    if isinstance(converter, UUIDConverter):
        return uuid.UUID(int=5)
    return "茶 a/b"


def _values(rule: Rule) -> dict[str, object]:
    return {name: _sample(converter) for name, converter in rule._converters.items()}


def test_every_rule_of_a_second_app_builds_as_a_freshly_compiled_builder(make_app, tmp_path):
    first = make_app(f"sqlite:///{tmp_path / 'one.db'}")
    second = make_app(
        f"sqlite:///{tmp_path / 'two.db'}",
        KOUDAI_SHOP_URL_PREFIX="/store",
        KOUDAI_ADMIN_URL_PREFIX="/back",
    )
    firsts = {rule.endpoint: rule for rule in first.url_map.iter_rules()}
    rules = list(second.url_map.iter_rules())
    assert len(rules) > 200
    shared = 0
    for rule in rules:
        values = _values(rule)
        for unknown in (False, True):
            fresh = compile_fresh(rule, unknown).__get__(rule, None)
            built = rule._build_unknown if unknown else rule._build
            extra = {"page": "2"} if unknown else {}
            assert built(**values, **extra) == fresh(**values, **extra), rule.rule
        twin = firsts.get(rule.endpoint)
        if twin is not None and twin.rule == rule.rule:
            shared += twin._build_unknown.__func__ is rule._build_unknown.__func__
    # The API's rules keep their prefix in both apps: their builders are the first app's.
    assert shared >= 50
