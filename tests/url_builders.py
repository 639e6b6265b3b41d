"""Werkzeug's URL builders, compiled once per test process instead of once per app.

Every app a test makes registers koudai's ~245 URL rules, and Werkzeug compiles two URL
builder functions for each (``Rule._compile_builder``: an AST made, walked and compiled),
about half of an app's start. The function it makes depends only on the rule's text, its
parts, its defaults' names and whether unknown values go to the query string: it reaches
the rule's converters through ``self`` when called. So the function made for one app's rule
serves the same rule of the next app. Rules with a default for one of their own variables
(the builder holds that default's converted value) are compiled as before.
``tests/test_url_builders.py`` checks that shared builders build what fresh ones do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule

_compile = Rule._compile_builder
_made: dict[tuple[Any, ...], Callable[..., tuple[str, str]]] = {}


def _shared_builder(self: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
    defaults = self.defaults or {}
    if any(dynamic and name in defaults for dynamic, name in self._trace):
        return _compile(self, append_unknown)
    key = (self.rule, append_unknown, tuple(self._trace), tuple(defaults))
    builder = _made.get(key)
    if builder is None:
        builder = _made[key] = _compile(self, append_unknown)
    return builder


def share_url_builders() -> None:
    Rule._compile_builder = _shared_builder  # type: ignore[method-assign]


def compile_fresh(rule: Rule, append_unknown: bool) -> Callable[..., tuple[str, str]]:
    """The builder Werkzeug itself makes for ``rule`` (for the check)."""
    return _compile(rule, append_unknown)
