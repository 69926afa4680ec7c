"""``POST /Bulk`` (RFC 7644 §3.7), in time linear in the request.

Operations run one by one through the same handlers as single requests, each in its
own transaction (a bulk request is not atomic).

``bulkId`` references (``bulkId:<id>`` in a path or anywhere in ``data``) form a
dependency graph: an operation waits for the POST that defines each bulkId it
names. The request is planned once (one walk of every operation collects its
references) and run once in topological order, earliest operation first among those
ready (so independent operations keep the client's order), with a heap: every
operation runs once and every reference is looked up once, whatever the order of
the request. A reference is answered with 409 ``invalidValue`` when

* no POST of the request defines it,
* the POST defining it failed,
* it is circular (the operations of a cycle, and those waiting on one, never become
  ready; RFC 7644 §3.7.1 allows 409 instead of breaking the cycle).

A second POST with a bulkId already used is 400 ``invalidValue`` (bulkIds are unique
within a request, RFC 7644 §3.7).

Limits (advertised in ``/ServiceProviderConfig``, RFC 7644 §3.7.4): more than
``IDP_SCIM_BULK_MAX_OPERATIONS`` operations, or a body over :data:`MAX_PAYLOAD`
bytes, is refused as a whole with 413 before anything runs. The request's time is
capped too (``IDP_SCIM_BULK_SECONDS``, checked before each operation): once spent,
no further operation starts, and every one not run is answered in the BulkResponse
with status 503 ("not run, send it again"), so the client knows exactly which to
retry; what ran stays done, as with ``failOnErrors``. ``failOnErrors`` stops
processing after that many errors; the response then lists only the operations
processed.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from idp.services import settings
from scim.casting import version_from_etags
from scim.errors import ScimError
from scim.filters import get_ci
from scim.resources import Context, Selection, dispatch
from scim.schema import BULK_REQUEST, BULK_RESPONSE

MAX_PAYLOAD = 1024 * 1024
METHODS = ("POST", "PUT", "PATCH", "DELETE")
_PATH = re.compile(r"^/(Users|Groups)(?:/([^/]+))?/?$")
_REF = re.compile(r"^bulkId:(.+)$", re.DOTALL)

clock: Callable[[], float] = time.monotonic
"""The clock of the time budget (wall time: what gunicorn's worker timeout measures);
tests replace it."""


def max_operations() -> int:
    return settings().scim_bulk_max_operations


@dataclass
class _Op:
    """One operation of the request, planned."""

    index: int
    doc: dict[str, Any]
    method: str
    bulk_id: str | None
    refs: set[str] = field(default_factory=set)
    waiting_for: int = 0
    dependents: list[int] = field(default_factory=list)


class _Unresolved(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# -- planning ------------------------------------------------------------------------


def _ref(value: Any) -> str | None:
    if isinstance(value, str):
        m = _REF.match(value)
        if m:
            return m.group(1)
    return None


def _references(op: dict[str, Any]) -> set[str]:
    """Every bulkId named in the operation's path (last segment) and data; one
    iterative walk, linear in the operation's size."""
    found: set[str] = set()
    path = get_ci(op, "path")
    if isinstance(path, str):
        name = _ref(path.rstrip("/").rpartition("/")[2])
        if name is not None:
            found.add(name)
    stack = [get_ci(op, "data")]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            name = _ref(item)
            if name is not None:
                found.add(name)
    return found


def _plan(docs: list[dict[str, Any]]) -> tuple[list[_Op], dict[str, int], set[int]]:
    """The operations with their edges; bulkId -> index of the POST defining it; the
    indices of POSTs that reuse a bulkId."""
    ops: list[_Op] = []
    definers: dict[str, int] = {}
    duplicates: set[int] = set()
    for index, doc in enumerate(docs):
        method = get_ci(doc, "method")
        bulk_id = get_ci(doc, "bulkId")
        op = _Op(index, doc, method.upper() if isinstance(method, str) else "",
                 bulk_id if isinstance(bulk_id, str) else None, _references(doc))
        if op.method == "POST" and op.bulk_id is not None:
            if op.bulk_id in definers:
                duplicates.add(index)
            else:
                definers[op.bulk_id] = index
        ops.append(op)
    for op in ops:
        for name in op.refs:
            definer = definers.get(name)
            if definer is not None and op.index not in duplicates:
                ops[definer].dependents.append(op.index)
                op.waiting_for += 1
    return ops, definers, duplicates


# -- resolution ----------------------------------------------------------------------


@dataclass
class _Created:
    """bulkId -> id of what its POST created, and why the others have none."""

    ids: dict[str, str] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


def lookup(created: _Created, name: str) -> str:
    """The id created for bulkId ``name``; one call per reference (tests count them)."""
    found = created.ids.get(name)
    if found is not None:
        return found
    if name in created.failed:
        raise _Unresolved(f"bulkId:{name} cannot be resolved: the operation defining it failed")
    raise _Unresolved(f"bulkId:{name} cannot be resolved: no POST in this request defines it")


def _substitute(value: Any, created: _Created) -> Any:
    """``value`` with every ``bulkId:x`` string replaced by x's id. Recursion is
    bounded by the JSON nesting limit of :mod:`idp.web.json_limits`."""
    if isinstance(value, str):
        name = _ref(value)
        return value if name is None else lookup(created, name)
    if isinstance(value, list):
        return [_substitute(v, created) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, created) for k, v in value.items()}
    return value


def _substitute_path(path: Any, created: _Created) -> Any:
    """``/Users/bulkId:x`` with the id the operation with bulkId ``x`` created."""
    if not isinstance(path, str):
        return path
    head, _, last = path.rstrip("/").rpartition("/")
    name = _ref(last)
    return path if name is None else f"{head}/{lookup(created, name)}"


# -- running -------------------------------------------------------------------------


def _operations(body: Any) -> tuple[list[dict[str, Any]], int | None]:
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a BulkRequest object", "invalidSyntax")
    schemas = get_ci(body, "schemas")
    if not isinstance(schemas, list) or BULK_REQUEST.lower() not in {
        str(s).lower() for s in schemas
    }:
        raise ScimError(400, f"schemas must contain {BULK_REQUEST}", "invalidSyntax")
    ops = get_ci(body, "Operations")
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise ScimError(400, "Operations must be a list of objects", "invalidSyntax")
    limit = max_operations()
    if len(ops) > limit:
        raise ScimError(
            413, f"too many operations: {len(ops)} exceeds the maxOperations ({limit})"
        )
    fail_on = get_ci(body, "failOnErrors")
    if fail_on is not None and (
        isinstance(fail_on, bool) or not isinstance(fail_on, int) or fail_on < 1
    ):
        raise ScimError(400, "failOnErrors must be a positive integer", "invalidValue")
    return ops, fail_on


def run(ctx: Context, body: Any) -> dict[str, Any]:
    """Execute a BulkRequest and return the BulkResponse document (operations in
    request order). Each operation is executed at most once; the work besides the
    operations themselves is linear in the size of the request."""
    docs, fail_on = _operations(body)
    ops, _, duplicates = _plan(docs)
    budget = settings().scim_bulk_seconds
    deadline = clock() + budget
    created = _Created()
    results: dict[int, dict[str, Any]] = {}
    ready = [op.index for op in ops if op.waiting_for == 0]
    heapq.heapify(ready)
    errors = 0

    def finish(index: int, result: dict[str, Any]) -> bool:
        """Record a result; True when failOnErrors says to stop."""
        nonlocal errors
        results[index] = result
        if int(result["status"]) >= 400:
            errors += 1
        return fail_on is not None and errors >= fail_on

    while ready:
        index = heapq.heappop(ready)
        op = ops[index]
        if clock() > deadline:
            for other in ops:
                if other.index not in results:
                    results[other.index] = _failure(other.doc, ScimError(
                        503, f"not run: the request used up its time budget ({budget:g} s) "
                        "before this operation; send it again"))
            return _response(results)
        if index in duplicates:
            outcome = _failure(op.doc, ScimError(
                400, f"bulkId {op.bulk_id} is used by an earlier operation", "invalidValue"))
        else:
            outcome = execute(ctx, op.doc, created)
        if op.method == "POST" and op.bulk_id is not None and index not in duplicates:
            if op.bulk_id not in created.ids:
                created.failed.add(op.bulk_id)
            for waiting in op.dependents:
                ops[waiting].waiting_for -= 1
                if ops[waiting].waiting_for == 0:
                    heapq.heappush(ready, waiting)
        if finish(index, outcome):
            return _response(results)
    for op in ops:  # never ready: part of a cycle, or waiting for one
        if op.index not in results and finish(op.index, _failure(op.doc, ScimError(
                409, "circular bulkId reference: this operation depends, directly or "
                "through others, on itself", "invalidValue"))):
            break
    return _response(results)


def _response(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [BULK_RESPONSE], "Operations": [results[i] for i in sorted(results)]}


def _failure(op: dict[str, Any], err: ScimError) -> dict[str, Any]:
    out: dict[str, Any] = {"method": str(get_ci(op, "method") or ""), "status": str(err.status)}
    bulk_id = get_ci(op, "bulkId")
    if isinstance(bulk_id, str):
        out["bulkId"] = bulk_id
    out["response"] = err.document()
    return out


def execute(ctx: Context, op: dict[str, Any], created: _Created) -> dict[str, Any]:
    """Run one operation once, its references resolved; its BulkResponse entry. A
    successful POST records its new id under its bulkId."""
    method = get_ci(op, "method")
    method = method.upper() if isinstance(method, str) else ""
    bulk_id = get_ci(op, "bulkId")
    try:
        if method not in METHODS:
            raise ScimError(400, f"method must be one of {', '.join(METHODS)}", "invalidSyntax")
        if method == "POST" and not isinstance(bulk_id, str):
            raise ScimError(400, "a POST operation needs a bulkId", "invalidSyntax")
        try:
            path = _substitute_path(get_ci(op, "path"), created)
            data = _substitute(get_ci(op, "data"), created)
        except _Unresolved as exc:
            raise ScimError(409, exc.detail, "invalidValue") from None
        m = _PATH.match(path) if isinstance(path, str) else None
        if m is None:
            raise ScimError(400, "path must be /Users, /Groups or /<type>/<id>", "invalidPath")
        kind, resource_id = m.group(1), m.group(2)
        if (method == "POST") != (resource_id is None):
            raise ScimError(400, f"{method} does not apply to {path}", "invalidPath")
        version = get_ci(op, "version")
        if_match = version_from_etags([version]) if isinstance(version, str) else None
        result = dispatch(ctx, method, kind, resource_id, data, if_match, Selection())
    except ScimError as err:
        return _failure(op, err)
    out: dict[str, Any] = {"method": method, "status": str(result.status)}
    if isinstance(bulk_id, str):
        out["bulkId"] = bulk_id
    location = result.headers.get("Location")
    if location:
        out["location"] = location
        if method == "POST" and isinstance(bulk_id, str) and result.body:
            created.ids[bulk_id] = str(result.body["id"])
    if "ETag" in result.headers:
        out["version"] = result.headers["ETag"]
    return out
