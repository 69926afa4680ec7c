"""PATCH (RFC 7644 §3.5.2) applied to a resource's JSON representation.

The current resource is rendered in full, each operation is applied to that
document, and the result is cast back to the domain like a PUT body, inside the
domain's retry loop, so concurrent PATCHes are each applied to fresh state.

Accepted shapes, as Okta and Microsoft Entra send them:

* ``op`` in any case (Entra's ``Replace``/``Add``/``Remove``);
* string booleans (``"value": "False"``) for boolean attributes;
* ``replace``/``add`` without ``path`` whose value holds attribute names, dotted
  sub-attributes (``name.givenName``) or URN-qualified names
  (``urn:...:enterprise:2.0:User:employeeNumber``);
* value paths ``emails[type eq "work"].value`` (a missing element is created) and
  ``members[value eq "id"]``;
* Entra's older member removal ``{"op": "Remove", "path": "members", "value":
  [{"value": "id"}]}``;
* a bare manager id as the value of ``...:manager``.

Attributes not in ``/Schemas`` are ignored; read-only ones are refused with
``mutability`` unless the value equals the current one (Okta echoes ``id``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scim.casting import clean_value
from scim.errors import ScimError, bad_request
from scim.filters import And, Cmp, Node, get_ci, matches
from scim.filters import parse as parse_filter
from scim.schema import PATCH_OP, Attr, ResourceSchema

OPS = ("add", "replace", "remove")
MAX_OPERATIONS = 1000


@dataclass(frozen=True)
class Operation:
    op: str
    path: str | None
    value: Any


@dataclass(frozen=True)
class Target:
    urn: str
    attr: Attr
    filter: Node | None
    sub: Attr | None


def parse_operations(body: Any) -> list[Operation]:
    """The operations of a PatchOp message; 400 ``invalidSyntax`` when malformed."""
    if not isinstance(body, dict):
        raise ScimError(400, "the request body must be a PatchOp object", "invalidSyntax")
    schemas = get_ci(body, "schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or PATCH_OP.lower() not in {str(s).lower() for s in schemas}
    ):
        raise ScimError(400, f"schemas must contain {PATCH_OP}", "invalidSyntax")
    raw = get_ci(body, "Operations")
    if not isinstance(raw, list) or not raw:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    if len(raw) > MAX_OPERATIONS:
        raise ScimError(400, "too many operations", "tooMany")
    ops = []
    for item in raw:
        if not isinstance(item, dict):
            raise ScimError(400, "each operation must be an object", "invalidSyntax")
        op = get_ci(item, "op")
        if not isinstance(op, str) or op.lower() not in OPS:
            raise ScimError(400, f"unknown operation {op!r}", "invalidSyntax")
        path = get_ci(item, "path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise ScimError(400, "path must be a non-empty string", "invalidPath")
        ops.append(Operation(op.lower(), path.strip() if path else None, get_ci(item, "value")))
    return ops


def apply(doc: dict[str, Any], ops: list[Operation], schema: ResourceSchema) -> dict[str, Any]:
    """A patched copy of ``doc``; the input is never modified."""
    out = copy.deepcopy(doc)
    for op in ops:
        _apply(out, op, schema)
    return out


def _apply(doc: dict[str, Any], op: Operation, schema: ResourceSchema) -> None:
    if op.path is None:
        if op.op == "remove":
            raise ScimError(400, "remove needs a path", "noTarget")
        if not isinstance(op.value, dict):
            raise bad_request("an operation without path needs an object value")
        for key, value in op.value.items():
            if not isinstance(key, str) or key.lower() == "schemas":
                continue
            urn = schema.urn(key)
            if urn is not None and urn != schema.core:
                if isinstance(value, dict):
                    for sub_key, sub_value in value.items():
                        _apply_path(doc, op.op, f"{urn}:{sub_key}", sub_value, schema, True)
                continue
            _apply_path(doc, op.op, key, value, schema, True)
        return
    _apply_path(doc, op.op, op.path, op.value, schema, False)


def parse_path(path: str, schema: ResourceSchema) -> Target | None:
    """Resolve ``[urn:]attr[[filter]][.sub]``; None for an attribute we do not keep."""
    urn = None
    rest = path
    for candidate in [*schema.extensions, schema.core]:
        if path.lower().startswith(candidate.lower() + ":"):
            urn, rest = candidate, path[len(candidate) + 1 :]
            break
    value_filter = None
    if "[" in rest:
        start, end = rest.index("["), rest.rfind("]")
        if end < start:
            raise ScimError(400, f"invalid path {path!r}", "invalidPath")
        value_filter = parse_filter(rest[start + 1 : end])
        after = rest[end + 1 :]
        if after and not after.startswith("."):
            raise ScimError(400, f"invalid path {path!r}", "invalidPath")
        rest = rest[:start] + after
    name, _, sub_name = rest.partition(".")
    if not name or "." in sub_name or not name.replace("$", "").replace("-", "_").isidentifier():
        raise ScimError(400, f"invalid path {path!r}", "invalidPath")
    found = schema.find(urn, name)
    if found is None:
        return None
    attr = found[1]
    sub = None
    if sub_name:
        sub = attr.child(sub_name)
        if sub is None:
            return None
    if value_filter is not None and not attr.multi:
        raise ScimError(400, f"{attr.name} is not multi-valued", "invalidPath")
    return Target(found[0], attr, value_filter, sub)


def _apply_path(
    doc: dict[str, Any], op: str, path: str, value: Any, schema: ResourceSchema, from_value: bool
) -> None:
    target = parse_path(path, schema)
    if target is None:
        return
    container = doc if target.urn == schema.core else doc.setdefault(target.urn, {})
    attr, sub = target.attr, target.sub
    leaf = sub or attr
    if attr.mutability == "readOnly" or leaf.mutability == "readOnly":
        if op != "remove" and from_value and _same(container.get(attr.name), value, sub):
            return
        raise ScimError(400, f"{attr.name} is read-only", "mutability")
    if op == "remove":
        _remove(container, target, value)
    elif attr.multi:
        _set_multi(container, target, value, op)
    elif sub is not None:
        holder = container.get(attr.name)
        if not isinstance(holder, dict):
            holder = container[attr.name] = {}
        holder[sub.name] = clean_value(sub, value)
    elif attr.type == "complex":
        cleaned = clean_value(attr, value)
        existing = container.get(attr.name)
        merged = dict(existing) if isinstance(existing, dict) else {}
        merged.update(cleaned or {})
        container[attr.name] = merged if cleaned is not None else None
    else:
        container[attr.name] = clean_value(attr, value)
    if target.urn != schema.core and not container:
        doc.pop(target.urn, None)


def _same(current: Any, value: Any, sub: Attr | None) -> bool:
    if sub is not None and isinstance(current, dict):
        current = current.get(sub.name)
    return current == value


def _case_exact(attr: Attr) -> set[str]:
    return {c.name.lower() for c in attr.sub if c.case_exact}


def _set_multi(container: dict[str, Any], target: Target, value: Any, op: str) -> None:
    attr, sub = target.attr, target.sub
    elements = container.get(attr.name)
    if not isinstance(elements, list):
        elements = []
    if target.filter is None and sub is None:
        new = clean_value(attr, value) or []
        if op == "replace":
            container[attr.name] = new
            return
        known = {_key(e) for e in elements}
        elements = elements + [e for e in new if _key(e) not in known]
        container[attr.name] = elements
        return
    hits = [e for e in elements if target.filter is None or matches(
        target.filter, e, _case_exact(attr))]
    if sub is not None:
        cleaned = clean_value(sub, value)
        for element in hits:
            element[sub.name] = cleaned
        if not hits:
            elements.append({**_seed(attr, target.filter), sub.name: cleaned})
    else:
        if not isinstance(value, dict):
            raise bad_request(f"the value for {attr.name}[...] must be an object")
        cleaned = clean_value(attr, [value])[0]
        for element in hits:
            if op == "replace":
                element.clear()
            element.update(cleaned)
        if not hits:
            elements.append({**_seed(attr, target.filter), **cleaned})
    container[attr.name] = elements


def _remove(container: dict[str, Any], target: Target, value: Any) -> None:
    attr, sub = target.attr, target.sub
    current = container.get(attr.name)
    if attr.required and target.filter is None and sub is None:
        raise ScimError(400, f"{attr.name} is required", "mutability")
    if not attr.multi:
        if sub is None:
            container.pop(attr.name, None)
        elif isinstance(current, dict):
            current.pop(sub.name, None)
        return
    elements = current if isinstance(current, list) else []
    if target.filter is None and sub is None:
        if isinstance(value, list) and value:
            gone = {_key(e) for e in clean_value(attr, value) or []}
            container[attr.name] = [e for e in elements if _key(e) not in gone]
        else:
            container.pop(attr.name, None)
        return
    exact = _case_exact(attr)
    hits = [e for e in elements if target.filter is None or matches(target.filter, e, exact)]
    if sub is None:
        container[attr.name] = [e for e in elements if all(e is not h for h in hits)]
    else:
        for element in hits:
            if isinstance(element, dict):
                element.pop(sub.name, None)


def _key(element: Any) -> Any:
    if isinstance(element, dict):
        return element.get("value", repr(sorted(element.items(), key=str)))
    return element


def _seed(attr: Attr, node: Node | None) -> dict[str, Any]:
    """The new element an add or replace creates when its value filter matched none."""
    seed = {}
    for name, value in _equalities(node).items():
        child = attr.child(name)
        if child is not None and child.mutability != "readOnly":
            seed[child.name] = clean_value(child, value)
    return seed


def _equalities(node: Node | None) -> dict[str, Any]:
    """``a eq x and b eq y`` as ``{"a": x, "b": y}``: the element an add creates."""
    if isinstance(node, Cmp) and node.op == "eq" and node.path.sub is None:
        return {node.path.attr: node.value}
    if isinstance(node, And):
        return {**_equalities(node.left), **_equalities(node.right)}
    return {}
