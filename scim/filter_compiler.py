"""Compiling a parsed SCIM filter onto a resource schema's domain fields, as a
:mod:`idp.store.predicates` tree the repositories translate into SQL.

Constant sub-attributes (the ``type`` and ``primary`` of Unitgate's single work
e-mail) fold to true or false here; values are typed by the attribute (booleans,
RFC 3339 date-times); anything not searchable is 400 ``invalidFilter``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from idp.store import predicates as p
from scim.filters import And, AttrPath, Cmp, Node, Not, Or, Pr, ValuePath, compare, invalid
from scim.schema import Attr, ResourceSchema


class Compiler:
    """Map a filter tree onto a resource schema's domain fields.

    ``lenient`` (root-level search over several resource types): an attribute the
    resource does not have matches nothing instead of being an error.
    """

    def __init__(self, schema: ResourceSchema, lenient: bool = False) -> None:
        self.schema = schema
        self.lenient = lenient

    def compile(self, node: Node) -> p.Predicate:
        if isinstance(node, And):
            return p.AllOf((self.compile(node.left), self.compile(node.right)))
        if isinstance(node, Or):
            return p.AnyOf((self.compile(node.left), self.compile(node.right)))
        if isinstance(node, Not):
            return p.Negate(self.compile(node.inner))
        resolved = self.schema.find(node.path.urn, node.path.attr)
        if resolved is None:
            if self.lenient:
                return p.Constant(False)
            raise invalid(f"unknown attribute {node.path.attr!r}")
        attr = resolved[1]
        if isinstance(node, ValuePath):
            if not attr.multi:
                raise invalid(f"{attr.name} is not multi-valued")
            return self.element(attr, node.filter)
        if attr.type == "complex":
            sub_name = node.path.sub or ("value" if attr.multi else None)
            sub = attr.child(sub_name) if sub_name else None
            if sub is None:
                raise invalid(f"filter on a sub-attribute of {attr.name}")
            leaf = node.__class__(AttrPath(None, sub.name), *_operands(node))
            return self.element(attr, leaf) if attr.multi else self.leaf(sub, leaf)
        if node.path.sub is not None:
            raise invalid(f"{attr.name} has no sub-attributes")
        return self.leaf(attr, node)

    def element(self, attr: Attr, node: Node) -> p.Predicate:
        """A condition on the (virtual or related) elements of ``attr``."""
        inner = _ElementCompiler(attr).compile(node)
        if attr.relation:
            return p.Related(attr.relation, inner)
        value = attr.child("value")
        if value is not None and value.field:
            return p.AllOf((p.Present(value.field), inner))
        return inner

    def leaf(self, attr: Attr, node: Node) -> p.Predicate:
        return _leaf(attr, node)


class _ElementCompiler:
    def __init__(self, attr: Attr) -> None:
        self.attr = attr

    def compile(self, node: Node) -> p.Predicate:
        if isinstance(node, And):
            return p.AllOf((self.compile(node.left), self.compile(node.right)))
        if isinstance(node, Or):
            return p.AnyOf((self.compile(node.left), self.compile(node.right)))
        if isinstance(node, Not):
            return p.Negate(self.compile(node.inner))
        if isinstance(node, ValuePath) or node.path.urn or node.path.sub:
            raise invalid(f"invalid filter inside {self.attr.name}[...]")
        sub = self.attr.child(node.path.attr)
        if sub is None:
            raise invalid(f"{self.attr.name} has no sub-attribute {node.path.attr!r}")
        return _leaf(sub, node)


def _operands(node: Node) -> tuple[Any, ...]:
    return (node.op, node.value) if isinstance(node, Cmp) else ()


def _leaf(attr: Attr, node: Node) -> p.Predicate:
    if attr.constant is not None:
        return p.Constant(_evaluate_constant(attr, node))
    if attr.field is None:
        raise invalid(f"{attr.name} cannot be used in a filter")
    if isinstance(node, Pr):
        return p.Present(attr.field)
    assert isinstance(node, Cmp)
    value = _typed(attr, node.op, node.value)
    if attr.type == "boolean" and node.op not in ("eq", "ne"):
        raise invalid(f"{node.op} does not apply to the boolean {attr.name}")
    return p.Compare(attr.field, node.op, value, attr.case_exact)


def _typed(attr: Attr, op: str, value: Any) -> Any:
    if value is None:
        if op not in ("eq", "ne"):
            raise invalid("null only compares with eq or ne")
        return None
    if attr.type == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise invalid(f"{attr.name} compares with true or false")
        return value
    if attr.type == "dateTime":
        if not isinstance(value, str):
            raise invalid(f"{attr.name} compares with a date-time string")
        return parse_datetime(value)
    if isinstance(value, bool):
        raise invalid(f"{attr.name} is not a boolean")
    return str(value) if isinstance(value, int | float) else value


def parse_datetime(text: str) -> datetime:
    """An RFC 3339 date-time (``Z`` or offset; naive means UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(f"invalid date-time {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _evaluate_constant(attr: Attr, node: Node) -> bool:
    if isinstance(node, Pr):
        return True
    assert isinstance(node, Cmp)
    return compare(attr.constant, node.op, node.value, attr.case_exact)


