"""The rule language of rule tags and segments: its fields, its grammar and its parser.

A rule is text such as ``total_spent >= 50000 and days_since_last_order <= 30 and channel
== "taobao"``. A small tokenizer and a recursive-descent parser turn it into a tree of
comparisons, checking every field and literal on the way; :mod:`koudai_flask.services.tag_rules`
turns the tree into SQL. Nothing is ever evaluated as Python: a rule can only compare the
listed fields with literal numbers, strings and dates. Grammar::

    rule       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := FIELD OP literal | FIELD ["not"] "in" "(" literal ("," literal)* ")"
    OP         := "==" | "!=" | "<" | "<=" | ">" | ">="
    literal    := INTEGER | "text" | 'text'

Keywords are lower case; a rule is at most 1000 characters and nests at most 20 deep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from koudai_flask.errors import ValidationError

MAX_LENGTH = 1000
MAX_DEPTH = 20
MAX_INTEGER = 10**12
MAX_DAYS = 36500  # a century: cut-offs stay far inside the calendar

# field -> (type, help). Types: number (compare with integers), days (whole days since a
# moment; empty without one), date ("YYYY-MM-DD" in the shop's time zone; empty without
# one), set (the customer has any / none of these values; ==, !=, in, not in only).
FIELDS: dict[str, tuple[str, str]] = {
    "total_spent": ("number", "spend on counted orders, in fen, less refunds"),
    "order_count": ("number", "counted (paid, not refunded) orders"),
    "rfm_r": ("number", "recency score 0-5"),
    "rfm_f": ("number", "frequency score 0-5"),
    "rfm_m": ("number", "monetary score 0-5"),
    "days_since_last_order": ("days", "whole days since the last counted order"),
    "days_since_first_order": ("days", "whole days since the first counted order"),
    "created_days": ("days", "whole days since the customer was first seen"),
    "last_order_date": ("date", "day of the last counted order"),
    "first_order_date": ("date", "day of the first counted order"),
    "created_date": ("date", "day the customer was first seen"),
    "channel": ("set", "a channel (name or kind) of one of the customer's counted orders"),
    "city": ("set", "a city of a counted order's address or of the address book"),
    "tag": ("set", "a tag the customer carries"),
    "identity": ("set", "a kind of identity the customer has (wechat_openid, phone, ...)"),
}
OPERATORS = ("==", "!=", "<", "<=", ">", ">=")
KEYWORDS = ("and", "or", "not", "in")


class RuleError(ValidationError):
    """A rule that does not parse or compares a field with the wrong kind of value."""

    def __init__(
        self,
        message: str,
        position: int | None = None,
        *,
        reason: str | None = None,
        **figures: Any,
    ) -> None:
        where = f" (at character {position + 1})" if position is not None else ""
        if position is not None:
            figures["position"] = position + 1
        super().__init__(
            f"rule: {message}{where}", {"rule": [message]}, reason=reason, detail=figures
        )
        self.position = position


# -- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # int | str | name | op | ( | ) | , | end
    text: str
    value: Any
    position: int


_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<int>[0-9]+)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<=|>=|<|>)
      | (?P<punct>[(),])
      | (?P<str>"(?:[^"\\\n]|\\["\\])*"|'(?:[^'\\\n]|\\['\\])*')""",
    re.VERBOSE,
)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def tokenize(text: str) -> list[Token]:
    if not isinstance(text, str):
        raise RuleError("a rule is text", reason="rule_not_text")
    if len(text) > MAX_LENGTH:
        raise RuleError(
            f"a rule is at most {MAX_LENGTH} characters", reason="rule_too_long", most=MAX_LENGTH
        )
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            if char in "\"'":
                # A quote closed only after a line break: the text holds a control character.
                closing = text.find(char, position + 1)
                if closing > 0 and _CONTROL.search(text, position + 1, closing):
                    raise RuleError(
                        "a text value cannot hold control characters",
                        position,
                        reason="rule_control",
                    )
                raise RuleError("text that is never closed", position, reason="rule_unclosed")
            raise RuleError(
                f"unexpected character {char!r}", position, reason="rule_character", char=char
            )
        kind = match.lastgroup
        raw = match.group()
        if kind == "int":
            if len(raw) > 13 or int(raw) > MAX_INTEGER:
                raise RuleError(
                    f"number {raw} is too large", position, reason="rule_number", number=raw
                )
            tokens.append(Token("int", raw, int(raw), position))
        elif kind == "name":
            tokens.append(Token("name", raw, raw, position))
        elif kind == "op":
            tokens.append(Token("op", raw, raw, position))
        elif kind == "punct":
            tokens.append(Token(raw, raw, raw, position))
        elif kind == "str":
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
            if len(value) > 200:
                raise RuleError(
                    "a text value is at most 200 characters", position, reason="rule_text_long"
                )
            if _CONTROL.search(value):
                raise RuleError(
                    "a text value cannot hold control characters", position, reason="rule_control"
                )
            tokens.append(Token("str", raw, value, position))
        position = match.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


# -- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    field: str
    op: str  # one of OPERATORS, "in" or "not in"
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    operands: tuple[Node, ...]


Node = Compare | Not | BoolOp


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _is_keyword(self, word: str) -> bool:
        return self.current.kind == "name" and self.current.text == word

    def _advance(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def _expect(self, kind: str, what: str, shown: str) -> Token:
        if self.current.kind != kind:
            raise self._unexpected(what, shown)
        return self._advance()

    def _unexpected(self, what: str, shown: str) -> RuleError:
        """``expected <what>, found ...``; ``shown`` is what was expected as rule text."""
        token = self.current
        if token.kind == "end":
            return RuleError(
                f"expected {what}, found the end of the rule",
                token.position,
                reason="rule_ends_early",
                expected=shown,
            )
        return RuleError(
            f"expected {what}, found {self._describe()}",
            token.position,
            reason="rule_expected",
            expected=shown,
            found=token.text,
        )

    def _describe(self) -> str:
        token = self.current
        return "the end of the rule" if token.kind == "end" else repr(token.text)

    def parse(self) -> Node:
        if self.current.kind == "end":
            raise RuleError("the rule is empty", 0, reason="rule_empty")
        node = self.or_expr()
        if self.current.kind != "end":
            raise self._unexpected("'and', 'or' or the end", "and / or")
        return node

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self._is_keyword("or"):
            self._advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self._is_keyword("and"):
            self._advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def not_expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError(
                f"a rule nests at most {MAX_DEPTH} deep",
                self.current.position,
                reason="rule_depth",
                most=MAX_DEPTH,
            )
        try:
            if self._is_keyword("not"):
                self._advance()
                return Not(self.not_expr())
            if self.current.kind == "(":
                self._advance()
                node = self.or_expr()
                self._expect(")", "')'", ")")
                return node
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> Compare:
        token = self.current
        if token.kind != "name" or token.text in KEYWORDS:
            raise self._unexpected("a field name", "total_spent, city, tag, ...")
        if token.text not in FIELDS:
            raise RuleError(
                f"unknown field {token.text!r}; fields are {', '.join(FIELDS)}",
                token.position,
                reason="rule_field",
                field=token.text,
            )
        self._advance()
        field = token.text
        if self._is_keyword("in") or self._is_keyword("not"):
            negated = self._advance().text == "not"
            if negated and not self._is_keyword("in"):
                raise self._unexpected("'in'", "in")
            if negated:
                self._advance()
            self._expect("(", "'('", "(")
            values = [self.literal(field)]
            while self.current.kind == ",":
                self._advance()
                values.append(self.literal(field))
            self._expect(")", "')'", ")")
            return Compare(field, "not in" if negated else "in", tuple(values))
        operator = self._expect("op", "a comparison such as == or >=", "== != < <= > >=")
        kind = FIELDS[field][0]
        if kind == "set" and operator.text not in ("==", "!="):
            raise RuleError(
                f"{field} takes only ==, !=, in and not in",
                operator.position,
                reason="rule_set_operator",
                field=field,
            )
        return Compare(field, operator.text, (self.literal(field),))

    def literal(self, field: str) -> Any:
        token = self.current
        kind = FIELDS[field][0]
        if kind in ("number", "days"):
            if token.kind != "int":
                raise RuleError(
                    f"{field} is compared with a whole number",
                    token.position,
                    reason="rule_wants_number",
                    field=field,
                )
            if kind == "days" and token.value > MAX_DAYS:
                raise RuleError(
                    f"a number of days is at most {MAX_DAYS}",
                    token.position,
                    reason="rule_days",
                    most=MAX_DAYS,
                )
            return self._advance().value
        if token.kind != "str":
            raise RuleError(
                f"{field} is compared with text in quotes",
                token.position,
                reason="rule_wants_text",
                field=field,
            )
        if kind == "date":
            try:
                day = date.fromisoformat(token.value)
            except ValueError:
                raise RuleError(
                    f'{field} takes a date as "YYYY-MM-DD"',
                    token.position,
                    reason="rule_wants_date",
                    field=field,
                ) from None
            if not 1900 <= day.year <= 2200:
                raise RuleError(
                    "a date is between the years 1900 and 2200",
                    token.position,
                    reason="rule_date_range",
                )
            self._advance()
            return day
        return self._advance().value


def parse(text: str) -> Node:
    """The tree of a rule, or ``RuleError`` saying what is wrong and where."""
    return _Parser(tokenize(text)).parse()


def validate(text: str) -> str:
    """The rule with outer blanks removed, once it parses."""
    if not isinstance(text, str):
        raise RuleError("a rule is text", reason="rule_not_text")
    text = text.strip()
    parse(text)
    return text


def fields_used(node: Node) -> set[str]:
    if isinstance(node, Compare):
        return {node.field}
    if isinstance(node, Not):
        return fields_used(node.operand)
    return set().union(*(fields_used(o) for o in node.operands))
