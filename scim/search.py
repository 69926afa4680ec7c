"""Query and ``.search`` (RFC 7644 §3.4.2, §3.4.3): filter, sort, paginate, select.

Filters compile to repository predicates scoped to the caller's unit, so another
unit's records can neither be returned nor counted. Pages are 1-based
(``startIndex``), at most :data:`MAX_RESULTS` long, in a stable order. Paging
integers are clamped as RFC 7644 §3.4.2.4 says (``startIndex`` < 1 is 1, ``count`` < 0
is 0) and also from above (:data:`MAX_START_INDEX`, :data:`MAX_RESULTS`), so no value
can overflow a database integer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from idp.provisioning import service as provisioning
from idp.provisioning import unit_groups
from idp.store.predicates import BadComparison, Constant, Predicate, UnknownField
from scim import filter_compiler, filters
from scim.errors import ScimError, bad_request
from scim.filters import get_ci
from scim.projection import parse_names, project
from scim.resources import Context, Result, Selection, domain, group_doc, user_doc
from scim.schema import GROUP_SCHEMA, LIST_RESPONSE, SEARCH_REQUEST, ResourceSchema

DEFAULT_COUNT = 100
MAX_RESULTS = 200
MAX_START_INDEX = 2**31 - 1
"""Larger ``startIndex`` values are read as this one: still past every record (so an
empty page with the true ``totalResults``), and an offset every database accepts."""


@dataclass
class Query:
    filter: str | None = None
    sort_by: str | None = None
    descending: bool = False
    start_index: int = 1
    count: int = DEFAULT_COUNT
    selection: Selection | None = None


_INTEGER = re.compile(r"[+-]?[0-9]+")
_DIGITS = 18  # any integer of at most 18 digits fits a signed 64-bit column


def bounded_int(value: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer parameter (URL text or JSON number) clamped to ``[low, high]``.

    Absent or empty gives ``default``. Values beyond the bounds, however large
    (a 30-digit string, ``1e300``), are clamped without ever reaching the database,
    so no backend can overflow. Anything that is not an integer (text, ``true``,
    ``Infinity``) is 400 ``invalidValue``.
    """
    if value is None or value == "":
        return default
    number: int
    if isinstance(value, bool):
        raise bad_request(f"{name} must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value):
        number = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        text = value.strip()
        if len(text.lstrip("+-")) > _DIGITS:
            number = low - 1 if text.startswith("-") else high + 1
        else:
            number = int(text)
    else:
        raise bad_request(f"{name} must be an integer")
    return min(high, max(low, number))


def _order(value: Any) -> bool:
    if value is None or value == "":
        return False
    if not isinstance(value, str) or value.lower() not in ("ascending", "descending"):
        raise bad_request("sortOrder must be ascending or descending")
    return value.lower() == "descending"


def query_from_args(args: Any) -> Query:
    """A query from URL parameters (parameter names case-insensitive)."""
    lowered = {k.lower(): v for k, v in args.items()}
    return _query(lowered)


def query_from_body(body: Any) -> Query:
    """A query from a SearchRequest body (``POST .search``)."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a SearchRequest object", "invalidSyntax")
    schemas = get_ci(body, "schemas")
    if schemas is not None and SEARCH_REQUEST.lower() not in {
        str(s).lower() for s in (schemas if isinstance(schemas, list) else [schemas])
    }:
        raise ScimError(400, f"schemas must contain {SEARCH_REQUEST}", "invalidSyntax")
    return _query({k.lower(): v for k, v in body.items() if isinstance(k, str)})


def _query(values: dict[str, Any]) -> Query:
    text = values.get("filter")
    if text is not None and not isinstance(text, str):
        raise ScimError(400, "filter must be a string", "invalidFilter")
    sort_by = values.get("sortby")
    if sort_by is not None and not isinstance(sort_by, str):
        raise bad_request("sortBy must be a string")
    attributes = parse_names(values.get("attributes"))
    excluded = parse_names(values.get("excludedattributes"))
    if attributes and excluded:
        raise bad_request("attributes and excludedAttributes cannot be combined")
    return Query(
        filter=text or None,
        sort_by=sort_by or None,
        descending=_order(values.get("sortorder")),
        start_index=bounded_int(values.get("startindex"), "startIndex", 1, 1, MAX_START_INDEX),
        count=bounded_int(values.get("count"), "count", DEFAULT_COUNT, 0, MAX_RESULTS),
        selection=Selection(attributes, excluded),
    )


def _predicate(query: Query, schema: ResourceSchema, lenient: bool = False) -> Predicate:
    if not query.filter:
        return Constant(True)
    return filter_compiler.Compiler(schema, lenient).compile(filters.parse(query.filter))


def _sort_field(query: Query, schema: ResourceSchema) -> str | None:
    if not query.sort_by:
        return None
    path = filters.parse_attr_path(query.sort_by)
    found = schema.find(path.urn, path.attr)
    if found is None:
        raise bad_request(f"cannot sort by {query.sort_by!r}")
    attr = found[1]
    if attr.type == "complex":
        sub = attr.child(path.sub or "value")
        attr = sub if sub is not None else attr
    if attr.field is None:
        raise bad_request(f"cannot sort by {query.sort_by!r}")
    return attr.field


def _run(call: Any) -> Any:
    try:
        return domain(call)
    except (UnknownField, BadComparison) as exc:
        raise ScimError(400, str(exc) or "invalid filter", "invalidFilter") from None


def list_response(total: int, start: int, resources: list[dict[str, Any]]) -> Result:
    return Result(
        200,
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": len(resources),
            "Resources": resources,
        },
    )


def search_users(ctx: Context, query: Query) -> Result:
    schema = ctx.user_schema
    where = _predicate(query, schema)
    sel = query.selection or Selection()
    total, users = _run(
        lambda: provisioning.find_users(
            ctx.unit_id, where, _sort_field(query, schema), query.descending,
            query.start_index - 1, query.count, with_groups=not sel.excludes("groups"),
        )
    )
    docs = [project(user_doc(ctx, u), schema, sel.attributes, sel.excluded) for u in users]
    return list_response(total, query.start_index, docs)


def search_groups(ctx: Context, query: Query) -> Result:
    where = _predicate(query, GROUP_SCHEMA)
    sel = query.selection or Selection()
    total, groups = _run(
        lambda: unit_groups.find_groups(
            ctx.unit_id, where, _sort_field(query, GROUP_SCHEMA), query.descending,
            query.start_index - 1, query.count, with_members=not sel.excludes("members"),
        )
    )
    docs = [project(group_doc(ctx, g), GROUP_SCHEMA, sel.attributes, sel.excluded)
            for g in groups]
    return list_response(total, query.start_index, docs)


def search_all(ctx: Context, query: Query) -> Result:
    """``POST /.search``: Users then Groups, one page over both (RFC 7644 §3.4.3).

    An attribute one resource type lacks simply matches none of its records;
    sorting applies within each type.
    """
    if query.sort_by:
        raise bad_request("sortBy is not supported on a search across resource types")
    sel = query.selection or Selection()
    schema = ctx.user_schema
    user_where = _predicate(query, schema, lenient=True)
    group_where = _predicate(query, GROUP_SCHEMA, lenient=True)
    offset, count = query.start_index - 1, query.count
    user_total, users = _run(
        lambda: provisioning.find_users(ctx.unit_id, user_where, None, False, offset, count)
    )
    group_offset = max(0, offset - user_total)
    group_count = max(0, count - len(users))
    group_total, groups = _run(
        lambda: unit_groups.find_groups(
            ctx.unit_id, group_where, None, False, group_offset, group_count,
            with_members=not sel.excludes("members"),
        )
    )
    docs = [project(user_doc(ctx, u), schema, sel.attributes, sel.excluded) for u in users]
    docs += [project(group_doc(ctx, g), GROUP_SCHEMA, sel.attributes, sel.excluded)
             for g in groups]
    return list_response(user_total + group_total, query.start_index, docs)
