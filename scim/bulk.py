"""``POST /Bulk`` (RFC 7644 §3.7).

Operations run one by one through the same handlers as single requests, each in its
own transaction (a bulk request is not atomic). ``bulkId:<id>`` references in paths
and data are replaced by the id the referenced POST created; an operation whose
reference is created later in the request waits for it, and one that can never be
resolved fails with 409. ``failOnErrors`` stops processing after that many errors.
More than :data:`MAX_OPERATIONS` operations, or a body over :data:`MAX_PAYLOAD`
bytes, is refused with 413.
"""

from __future__ import annotations

import re
from typing import Any

from scim.casting import version_from_etags
from scim.errors import ScimError
from scim.filters import get_ci
from scim.resources import Context, Selection, dispatch
from scim.schema import BULK_REQUEST, BULK_RESPONSE

MAX_OPERATIONS = 1000
MAX_PAYLOAD = 1024 * 1024
METHODS = ("POST", "PUT", "PATCH", "DELETE")
_PATH = re.compile(r"^/(Users|Groups)(?:/([^/]+))?/?$")
_REF = re.compile(r"^bulkId:(.+)$")


class _Unresolved(Exception):
    def __init__(self, bulk_id: str) -> None:
        self.bulk_id = bulk_id


def _resolve(value: Any, created: dict[str, str]) -> Any:
    if isinstance(value, str):
        m = _REF.match(value)
        if m:
            if m.group(1) not in created:
                raise _Unresolved(m.group(1))
            return created[m.group(1)]
        return value
    if isinstance(value, list):
        return [_resolve(v, created) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, created) for k, v in value.items()}
    return value


def _resolve_path(path: Any, created: dict[str, str]) -> Any:
    """``/Users/bulkId:x`` with the id the operation with bulkId ``x`` created."""
    if not isinstance(path, str):
        return path
    head, _, last = path.rstrip("/").rpartition("/")
    m = _REF.match(last)
    if m is None:
        return path
    if m.group(1) not in created:
        raise _Unresolved(m.group(1))
    return f"{head}/{created[m.group(1)]}"


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
    if len(ops) > MAX_OPERATIONS:
        raise ScimError(
            413, f"too many operations: at most {MAX_OPERATIONS} per request (maxOperations)"
        )
    fail_on = get_ci(body, "failOnErrors")
    if fail_on is not None and (
        isinstance(fail_on, bool) or not isinstance(fail_on, int) or fail_on < 1
    ):
        raise ScimError(400, "failOnErrors must be a positive integer", "invalidValue")
    return ops, fail_on


def run(ctx: Context, body: Any) -> dict[str, Any]:
    """Execute a BulkRequest and return the BulkResponse document."""
    ops, fail_on = _operations(body)
    created: dict[str, str] = {}
    results: dict[int, dict[str, Any]] = {}
    pending = list(range(len(ops)))
    errors = 0
    while pending:
        waiting = []
        for index in pending:
            try:
                results[index] = _one(ctx, ops[index], created)
            except _Unresolved:
                waiting.append(index)
                continue
            if int(results[index]["status"]) >= 400:
                errors += 1
                if fail_on is not None and errors >= fail_on:
                    return _response(results)
        if len(waiting) == len(pending):
            for index in waiting:
                results[index] = _failure(ops[index], ScimError(
                    409, "bulkId reference cannot be resolved", "invalidValue"))
            break
        pending = waiting
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


def _one(ctx: Context, op: dict[str, Any], created: dict[str, str]) -> dict[str, Any]:
    method = get_ci(op, "method")
    method = method.upper() if isinstance(method, str) else ""
    bulk_id = get_ci(op, "bulkId")
    try:
        if method not in METHODS:
            raise ScimError(400, f"method must be one of {', '.join(METHODS)}", "invalidSyntax")
        if method == "POST" and not isinstance(bulk_id, str):
            raise ScimError(400, "a POST operation needs a bulkId", "invalidSyntax")
        path = _resolve_path(get_ci(op, "path"), created)
        data = _resolve(get_ci(op, "data"), created)
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
            created[bulk_id] = str(result.body["id"])
    if "ETag" in result.headers:
        out["version"] = result.headers["ETag"]
    return out
