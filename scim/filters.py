"""SCIM filters (RFC 7644 §3.4.2.2): parsing, compiling to repository predicates,
and safe evaluation against JSON elements (for PATCH value paths).

Grammar, with ``not`` > ``and`` > ``or`` precedence and parentheses::

    FILTER    = attrExp / logExp / valuePath [ "." subAttr SP compareOp SP compValue ]
              / [ "not" ] "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    attrPath  = [URI ":"] ATTRNAME *1subAttr

Operators, keywords and attribute names are case-insensitive. ``compValue`` is a
JSON string, number, ``true``, ``false`` or ``null``; a bare word (as Entra writes
``externalId eq jyoung``) is read as a string. Nothing is ever evaluated as code:
the parser builds a tree, :mod:`scim.filter_compiler` maps it to
:mod:`idp.store.predicates`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from scim.errors import ScimError

COMPARE_OPS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
MAX_FILTER_LENGTH = 4000
MAX_DEPTH = 50

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:.$-]))
    | (?P<punct>[()\[\]])
    | (?P<dot>\.)
    | (?P<word>[A-Za-z_$][\w:.$-]*)
    | (?P<bare>[^\s()\[\]"]+)
    )""",
    re.VERBOSE,
)


def invalid(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


# -- syntax tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class AttrPath:
    urn: str | None
    attr: str
    sub: str | None = None


@dataclass(frozen=True)
class Cmp:
    path: AttrPath
    op: str
    value: Any


@dataclass(frozen=True)
class Pr:
    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class ValuePath:
    """Some element of the multi-valued ``path.attr`` matches ``filter``."""

    path: AttrPath
    filter: Node


Node = Cmp | Pr | And | Or | Not | ValuePath


# -- parsing -------------------------------------------------------------------------


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise invalid(f"unexpected character at position {pos + 1}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def parse_attr_path(text: str) -> AttrPath:
    """``[urn:]attr[.sub]``; the URN is everything up to the last colon."""
    urn = None
    rest = text
    if ":" in text:
        urn, rest = text.rsplit(":", 1)
    parts = rest.split(".")
    if len(parts) > 2 or not all(re.fullmatch(r"[A-Za-z$][\w$-]*", x) for x in parts):
        raise invalid(f"invalid attribute path {text!r}")
    return AttrPath(urn, parts[0], parts[1] if len(parts) == 2 else None)


class Parser:
    """Recursive-descent parser over the token list."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise ScimError(400, "the filter is too long", "invalidFilter")
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise invalid("the filter ends too early")
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise invalid(f"expected {value!r}, found {tok[1]!r}")

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok[0] == "word" and tok[1].lower() in words:
            self.pos += 1
            return tok[1].lower()
        return None

    def parse(self) -> Node:
        node = self.or_expr()
        left = self.peek()
        if left is not None:
            raise invalid(f"unexpected {left[1]!r}")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.keyword("and"):
            node = And(node, self.unary())
        return node

    def unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid("the filter is nested too deeply")
        try:
            tok = self.peek()
            if tok and tok[0] == "word" and tok[1].lower() == "not":
                nxt = self.peek(1)
                if nxt is not None and nxt[1] == "(":
                    self.pos += 1
                    return Not(self.group())
            if tok and tok[1] == "(":
                return self.group()
            return self.attr_expr()
        finally:
            self.depth -= 1

    def group(self) -> Node:
        self.expect("(")
        node = self.or_expr()
        self.expect(")")
        return node

    def attr_expr(self) -> Node:
        kind, text = self.take()
        if kind != "word":
            raise invalid(f"expected an attribute name, found {text!r}")
        path = parse_attr_path(text)
        nxt = self.peek()
        if nxt is not None and nxt[1] == "[":
            if path.sub is not None:
                raise invalid("a value filter must follow a multi-valued attribute")
            self.pos += 1
            inner = self.or_expr()
            self.expect("]")
            node: Node = ValuePath(path, inner)
            after = self.peek()
            if after is not None and after[0] == "dot":
                self.pos += 1
                sub_kind, sub = self.take()
                if sub_kind != "word" or not re.fullmatch(r"[A-Za-z$][\w$-]*", sub):
                    raise invalid("expected a sub-attribute after ']'.")
                node = ValuePath(path, And(inner, self.comparison(AttrPath(None, sub))))
            return node
        return self.comparison(path)

    def comparison(self, path: AttrPath) -> Node:
        kind, op = self.take()
        op = op.lower()
        if kind != "word" or (op not in COMPARE_OPS and op != "pr"):
            raise invalid(f"unknown operator {op!r}")
        if op == "pr":
            return Pr(path)
        return Cmp(path, op, self.value())

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            try:
                return json.loads(text)
            except ValueError:
                raise invalid("invalid string literal") from None
        if kind == "number":
            return json.loads(text)
        if kind == "word":
            lowered = text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered == "null":
                return None
            return text
        if kind == "bare":
            return text
        raise invalid(f"expected a value, found {text!r}")


def parse(text: str) -> Node:
    """Parse a filter; :class:`ScimError` 400 ``invalidFilter`` when malformed."""
    if not text or not text.strip():
        raise invalid("the filter is empty")
    return Parser(text).parse()


# -- evaluating against JSON (PATCH value paths) -------------------------------------


def compare(actual: Any, op: str, expected: Any, case_exact: bool = False) -> bool:
    """SCIM comparison of two JSON values; incomparable types never match."""
    if expected is None or actual is None:
        if op == "eq":
            return actual is None and expected is None
        if op == "ne":
            return not (actual is None and expected is None)
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        if isinstance(expected, str) and expected.lower() in ("true", "false"):
            expected = expected.lower() == "true"
        if isinstance(actual, str) and actual.lower() in ("true", "false"):
            actual = actual.lower() == "true"
        if op == "eq":
            return actual is expected
        if op == "ne":
            return actual is not expected
        return False
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return _ordered(float(actual), op, float(expected))
    a, b = str(actual), str(expected)
    if not case_exact:
        a, b = a.lower(), b.lower()
    if op == "co":
        return b in a
    if op == "sw":
        return a.startswith(b)
    if op == "ew":
        return a.endswith(b)
    return _ordered(a, op, b)


_Ordered = TypeVar("_Ordered", float, str)


def _ordered(a: _Ordered, op: str, b: _Ordered) -> bool:
    """``eq``, ``ne``, ``gt``, ``ge``, ``lt`` and ``le`` of two values of one type;
    any other operator (``co``, ``sw``, ``ew`` on numbers) never matches."""
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if op == "gt":
        return a > b
    if op == "ge":
        return a >= b
    if op == "lt":
        return a < b
    if op == "le":
        return a <= b
    return False


def get_ci(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` with a case-insensitive key."""
    lowered = name.lower()
    for key, value in obj.items():
        if key.lower() == lowered:
            return value
    return None


def matches(node: Node, element: Any, case_exact: set[str] | None = None) -> bool:
    """Does one element of a multi-valued attribute (a JSON object, or a bare value
    compared as ``value``) match a value filter?"""
    if isinstance(node, And):
        return matches(node.left, element, case_exact) and matches(node.right, element, case_exact)
    if isinstance(node, Or):
        return matches(node.left, element, case_exact) or matches(node.right, element, case_exact)
    if isinstance(node, Not):
        return not matches(node.inner, element, case_exact)
    if isinstance(node, ValuePath) or node.path.urn or node.path.sub:
        raise invalid("nested value filters are not supported")
    name = node.path.attr
    actual = get_ci(element, name) if isinstance(element, dict) else (
        element if name.lower() == "value" else None
    )
    if isinstance(node, Pr):
        return actual not in (None, "", [], {})
    exact = name.lower() in (case_exact or set())
    return compare(actual, node.op, node.value, exact)
