"""``attributes`` and ``excludedAttributes`` (RFC 7644 §3.9, §3.4.2.5).

Names are resolved case-insensitively, may carry a schema URN and one sub-attribute
(``name.givenName``, ``urn:...:enterprise:2.0:User:manager.value``). ``id`` and
``schemas`` are always returned; names the resource does not have are ignored.
"""

from __future__ import annotations

import copy
from typing import Any

from scim.errors import ScimError, bad_request
from scim.filters import parse_attr_path
from scim.schema import Attr, ResourceSchema

ALWAYS = ("schemas", "id")
MAX_NAMES = 100


def parse_names(raw: str | list[str] | None) -> list[str] | None:
    """A comma-separated query parameter (or a JSON list) as a list of names."""
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else str(raw).split(",")
    names = [str(x).strip() for x in items if str(x).strip()]
    if len(names) > MAX_NAMES:
        raise bad_request("too many attribute names", "invalidValue")
    return names or None


def _resolve(schema: ResourceSchema, name: str) -> tuple[str, Attr, str | None] | None:
    if schema.urn(name) is not None:
        return None
    try:
        path = parse_attr_path(name)
    except ScimError:
        raise bad_request(f"invalid attribute name {name!r}", "invalidPath") from None
    found = schema.find(path.urn, path.attr)
    if found is None:
        return None
    urn, attr = found
    sub = None
    if path.sub is not None:
        child = attr.child(path.sub)
        if child is None:
            return None
        sub = child.name
    return urn, attr, sub


def _container(doc: dict[str, Any], schema: ResourceSchema, urn: str) -> dict[str, Any] | None:
    if urn == schema.core:
        return doc
    value = doc.get(urn)
    return value if isinstance(value, dict) else None


def project(
    doc: dict[str, Any],
    schema: ResourceSchema,
    attributes: list[str] | None,
    excluded: list[str] | None,
) -> dict[str, Any]:
    """``doc`` reduced to what the client asked for."""
    if attributes:
        out: dict[str, Any] = {k: doc[k] for k in ALWAYS if k in doc}
        for name in attributes:
            resolved = _resolve(schema, name)
            if resolved is None:
                continue
            urn, attr, sub = resolved
            source = _container(doc, schema, urn)
            if source is None or attr.name not in source:
                continue
            target = out if urn == schema.core else out.setdefault(urn, {})
            _copy(source, target, attr, sub)
        out["schemas"] = [s for s in doc.get("schemas", []) if s == schema.core or s in out]
        return out
    if excluded:
        out = copy.deepcopy(doc)
        for name in excluded:
            resolved = _resolve(schema, name)
            if resolved is None:
                continue
            urn, attr, sub = resolved
            if attr.returned == "always":
                continue
            target = _container(out, schema, urn)
            if target is None or attr.name not in target:
                continue
            if sub is None:
                del target[attr.name]
            elif isinstance(target[attr.name], list):
                for element in target[attr.name]:
                    if isinstance(element, dict):
                        element.pop(sub, None)
            elif isinstance(target[attr.name], dict):
                target[attr.name].pop(sub, None)
            if urn != schema.core and not target:
                del out[urn]
        out["schemas"] = [s for s in doc.get("schemas", []) if s == schema.core or s in out]
        return out
    return doc


def _copy(source: dict[str, Any], target: dict[str, Any], attr: Attr, sub: str | None) -> None:
    value = source[attr.name]
    if sub is None:
        target[attr.name] = copy.deepcopy(value)
    elif isinstance(value, list):
        existing = target.get(attr.name)
        picked = [{sub: e[sub]} for e in value if isinstance(e, dict) and sub in e]
        if isinstance(existing, list) and len(existing) == len(picked):
            for have, add in zip(existing, picked, strict=True):
                have.update(add)
        else:
            target[attr.name] = picked
    elif isinstance(value, dict) and sub in value:
        target.setdefault(attr.name, {})[sub] = copy.deepcopy(value[sub])
