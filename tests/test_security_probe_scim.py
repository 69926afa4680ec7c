"""Issue 10, findings 6 and 8 (outside security probe) and SECURITY.md, SCIM: "Every
request has a bounded cost: Bulk, filters, paging and JSON nesting are capped, with a
clear 4xx above the cap, in time linear in the input"; Failure: never a 500.

* paging integers of any size (``startIndex=9223372036854775809`` overflowed SQLite)
  are clamped (RFC 7644 §3.4.2.4), never sent to the database as they are;
* JSON bodies nested 1,000 levels deep (Python's recursion limit) are refused with
  400 in the endpoint's own error shape, before the parser recurses.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.exceptions import BadRequest

from idp.web import json_limits
from scim import bulk as scim_bulk
from scim import search
from tests.support.scim import (
    ENTERPRISE,
    GROUP,
    PATCH_OP,
    SCIM_JSON,
    USER,
    Scim,
    body,
    create_token,
    error,
    make_unit,
)

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
HUGE = "9223372036854775809"  # 2**63 + 1: one past what a 64-bit column holds


@pytest.fixture
def scim(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> Scim:
    make_unit(app, "acme")
    return Scim(client, create_token(runner, "acme"))


@pytest.fixture
def records(scim: Scim) -> dict[str, str]:
    """Three users and one group of unit acme; name -> id."""
    ids = {}
    for name in ("anna", "bert", "carl"):
        ids[name] = body(scim.post("/Users", {"schemas": [USER],
                                              "userName": f"{name}@acme.example"}), 201)["id"]
    ids["team"] = body(scim.post("/Groups", {"schemas": [GROUP], "displayName": "Team",
                                             "members": [{"value": ids["anna"]}]}), 201)["id"]
    return ids


# -- finding 8a: paging integers ----------------------------------------------------


@pytest.mark.parametrize(("kind", "total"), [("Users", 3), ("Groups", 1)])
@pytest.mark.parametrize("start", [HUGE, "9223372036854775807", "1" + "0" * 40])
def test_huge_start_index_is_an_empty_page(scim: Scim, records: dict[str, str], kind: str,
                                           total: int, start: str) -> None:  # fmt: skip
    """The probe's ``GET /Users?startIndex=9223372036854775809`` was a 500 (SQLite
    integer overflow): now an empty page past the last record, with the true total."""
    page = body(scim.get(f"/{kind}?startIndex={start}"), 200)
    assert page["totalResults"] == total
    assert page["Resources"] == [] and page["itemsPerPage"] == 0
    assert page["startIndex"] == search.MAX_START_INDEX


@pytest.mark.parametrize("kind", ["Users", "Groups"])
def test_paging_integers_are_clamped_as_rfc_7644_says(scim: Scim, records: dict[str, str],
                                                       kind: str) -> None:  # fmt: skip
    """startIndex < 1 is 1, count < 0 is 0, count above the maximum is the maximum
    (RFC 7644 §3.4.2.4), whatever the number of digits."""
    low = body(scim.get(f"/{kind}?startIndex=-{HUGE}&count=1"), 200)
    assert low["startIndex"] == 1 and low["itemsPerPage"] == 1
    assert body(scim.get(f"/{kind}?startIndex=0&count=1"), 200)["startIndex"] == 1
    none = body(scim.get(f"/{kind}?count=-{HUGE}"), 200)
    assert none["Resources"] == [] and none["totalResults"] > 0
    many = body(scim.get(f"/{kind}?count={HUGE}"), 200)
    assert many["itemsPerPage"] == many["totalResults"] <= search.MAX_RESULTS
    for junk in ("1_0", "1e3", "0x10", "\u0661", "abc", " "):
        if junk.strip():
            error(scim.get(f"/{kind}?startIndex={junk}"), 400, "invalidValue")


@pytest.mark.parametrize("path", ["/Users/.search", "/Groups/.search", "/.search"])
def test_search_bodies_with_huge_numbers(scim: Scim, records: dict[str, str],
                                         path: str) -> None:  # fmt: skip
    """JSON numbers in a SearchRequest: huge ones clamp like URL parameters; ``1e400``
    (a float infinity to Python) is 400, not an ``OverflowError``."""
    def post(raw: str) -> Any:
        return scim.client.post("/scim/v2" + path, data=raw, content_type=SCIM_JSON,
                                headers=scim.headers())

    page = body(post(f'{{"schemas": ["{SEARCH}"], "startIndex": {HUGE}, "count": {HUGE}}}'), 200)
    assert page["Resources"] == [] and page["totalResults"] > 0
    page = body(post(f'{{"schemas": ["{SEARCH}"], "startIndex": 1, "count": 1e300}}'), 200)
    assert page["itemsPerPage"] > 0
    for number in ("1e400", "-1e400"):
        error(post(f'{{"schemas": ["{SEARCH}"], "startIndex": {number}}}'), 400, "invalidValue")
        error(post(f'{{"schemas": ["{SEARCH}"], "count": {number}}}'), 400, "invalidValue")
    # NaN and Infinity are not JSON (RFC 8259 §6)
    error(post(f'{{"schemas": ["{SEARCH}"], "count": NaN}}'), 400, "invalidSyntax")


def test_if_match_with_huge_or_foreign_digits(scim: Scim, records: dict[str, str]) -> None:
    """An ETag version too long for a database integer, or of non-ASCII digits
    (``str.isdigit`` accepts "²", ``int`` does not), is a version we never issued: 412."""
    for tag in (f'W/"{HUGE}{HUGE}"', 'W/"\u00b2"', f'"{HUGE}"'):
        error(scim.delete(f"/Users/{records['anna']}", headers={"If-Match": tag}), 412)
    assert body(scim.get(f"/Users/{records['anna']}"), 200)["id"] == records["anna"]


def test_bounded_int_never_converts_huge_text() -> None:
    """Text longer than 18 digits is clamped without ``int()`` (so neither the
    database nor Python's digit limit ever sees it)."""
    assert search.bounded_int("9" * 5000, "count", 1, 0, 200) == 200
    assert search.bounded_int("-" + "9" * 5000, "startIndex", 1, 1, 10) == 1
    assert search.bounded_int(" 42 ", "count", 1, 0, 200) == 42
    assert search.bounded_int(None, "count", 7, 0, 200) == 7
    assert search.bounded_int(10**400, "count", 7, 0, 200) == 200


# -- finding 8b: JSON nesting -------------------------------------------------------

DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


def _deep_inside(kind: str) -> str:
    """A valid document of ``kind`` with a deeply nested value in one attribute."""
    deep = "[" * 1000 + '"x"' + "]" * 1000
    if kind == "patch":
        return f'{{"schemas": ["{PATCH_OP}"], "Operations": [{{"op": "add", "path": ' \
               f'"title", "value": {deep}}}]}}'
    if kind == "bulk":
        return f'{{"schemas": ["{BULK}"], "Operations": [{{"method": "POST", "path": ' \
               f'"/Users", "bulkId": "a", "data": {{"schemas": ["{USER}"], ' \
               f'"userName": "a@acme.example", "title": {deep}}}}}]}}'
    schema = GROUP if kind == "group" else USER
    return f'{{"schemas": ["{schema}"], "userName": "d@acme.example", ' \
           f'"displayName": "D", "title": {deep}}}'


def _json_routes(records: dict[str, str]) -> list[tuple[str, str, str]]:
    """(method, path, kind of document) of every SCIM route that reads a JSON body."""
    user, group = records["bert"], records["team"]
    return [("POST", "/Users", "user"), ("PUT", f"/Users/{user}", "user"),
            ("PATCH", f"/Users/{user}", "patch"), ("POST", "/Groups", "group"),
            ("PUT", f"/Groups/{group}", "group"), ("PATCH", f"/Groups/{group}", "patch"),
            ("POST", "/Bulk", "bulk"), ("POST", "/Users/.search", "search"),
            ("POST", "/Groups/.search", "search"), ("POST", "/.search", "search")]


def test_deep_json_is_400_on_every_scim_body(scim: Scim, records: dict[str, str]) -> None:
    """1,000 levels of arrays or objects, alone or inside a valid document: 400
    ``invalidSyntax`` in the SCIM error schema on every route with a body, never the
    500 of a ``RecursionError``; the records are untouched."""
    before = body(scim.get(f"/Users/{records['bert']}"), 200)
    for method, path, kind in _json_routes(records):
        for raw in (DEEP_ARRAY, DEEP_OBJECT, _deep_inside(kind)):
            resp = scim.client.open("/scim/v2" + path, method=method, data=raw,
                                    content_type=SCIM_JSON, headers=scim.headers())
            doc = error(resp, 400, "invalidSyntax")
            assert "nested deeper than" in doc["detail"], (method, path, doc)
    assert body(scim.get(f"/Users/{records['bert']}"), 200) == before


def test_ordinary_bodies_still_work(scim: Scim, records: dict[str, str]) -> None:
    """The limit leaves room for every real SCIM document (they nest about 6 deep),
    brackets inside strings do not count, and UTF-16 bodies are still read."""
    doc = body(scim.post("/Users", {"schemas": [USER], "userName": "e@acme.example",
                                    "title": "[[[[{{{{" * 20}), 201)
    assert doc["title"] == "[[[[{{{{" * 20
    utf16 = json.dumps({"schemas": [USER], "userName": "f@acme.example"}).encode("utf-16")
    resp = scim.client.post("/scim/v2/Users", data=utf16, content_type=SCIM_JSON,
                            headers=scim.headers())
    assert body(resp, 201)["userName"] == "f@acme.example"
    found = body(scim.post("/Users/.search", {"schemas": [SEARCH],
                                              "filter": 'userName eq "e@acme.example"'}), 200)
    assert found["totalResults"] == 1


def test_depth_check_counts_containers_not_brackets_in_strings() -> None:
    limit = json_limits.MAX_DEPTH
    assert json_limits.loads("[" * limit + "]" * limit) is not None
    with pytest.raises(json_limits.JsonTooDeep):
        json_limits.loads("[" * (limit + 1) + "]" * (limit + 1))
    assert json_limits.nesting_depth('{"a": "[[[[\\"[[[", "b": [{}]}') == 3
    assert json_limits.loads('["\\\\", "[[["]') == ["\\", "[[["]
    for constant in ("NaN", "Infinity", "-Infinity", "[NaN]"):
        with pytest.raises(ValueError):
            json_limits.loads(constant)


def test_an_unclosed_string_full_of_escaped_quotes_is_scanned_once() -> None:
    """``"`` then ``\\"`` repeated: the depth scan once re-scanned to the end from every
    quote (quadratic: a 1 MiB SCIM body ran until the worker timeout). The unclosed
    string now runs to the end in one match; 1 MiB is refused at once as not JSON."""
    text = '"' + '\\"' * 500_000
    assert json_limits.nesting_depth(text) == 0
    with pytest.raises(ValueError):
        json_limits.loads(text)
    assert json_limits.nesting_depth('[["' + '\\"' * 1000) == 2


def test_flask_get_json_has_the_same_limit(app: Flask) -> None:
    """Any route that ever calls ``request.get_json`` gets the limit as a 400
    (handled by the app's error handlers), through the app's JSON provider."""
    for raw in (DEEP_ARRAY, DEEP_OBJECT):
        with (app.test_request_context("/x", method="POST", data=raw,
                                       content_type="application/json"),
              pytest.raises(BadRequest)):
            request.get_json()
    with app.test_request_context("/x", method="POST", data='{"a": [1]}',
                                  content_type="application/json"):
        assert request.get_json() == {"a": [1]}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_deep_json_in_tokens_is_refused_without_a_500(client: FlaskClient) -> None:
    """The other JSON the app reads from requests is inside JWTs (bearer tokens at
    /userinfo, client assertions at /token, ``id_token_hint``): a deep header or
    payload is refused in the endpoint's own shape (joserfc caps header size before
    parsing; payloads are parsed only after the signature verified)."""
    for header, payload in ((b'{"alg":' + DEEP_ARRAY.encode() + b"}", b"{}"),
                            (b'{"alg":"ES256","kid":"k"}', DEEP_OBJECT.encode())):
        token = f"{_b64(header)}.{_b64(payload)}.{_b64(b'sig')}"
        resp = client.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        resp = client.post("/token", data={
            "grant_type": "client_credentials", "client_assertion": token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
        assert resp.status_code in (400, 401) and resp.get_json()["error"]
        resp = client.get("/logout", query_string={"id_token_hint": token},
                          headers={"Accept": "text/html"})
        assert resp.status_code < 500


# -- finding 6: Bulk in linear time, with caps ---------------------------------------


def managed_by(bulk_id: str, manager: str | None) -> dict[str, Any]:
    """A POST of user ``bulk_id`` whose manager is the user of bulkId ``manager``."""
    data: dict[str, Any] = {"schemas": [USER, ENTERPRISE], "userName": f"{bulk_id}@acme.example"}
    if manager is not None:
        data[ENTERPRISE] = {"manager": {"value": f"bulkId:{manager}"}}
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": data}


def reverse_chain(n: int, prefix: str = "u") -> list[dict[str, Any]]:
    """u0 managed by u1 managed by u2 ... : every POST names one that comes after it,
    the probe's worst case (the old code needed one pass over the rest per step)."""
    return [managed_by(f"{prefix}{i}", f"{prefix}{i + 1}" if i + 1 < n else None)
            for i in range(n)]


def bulk(scim: Scim, ops: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    return list(body(scim.post("/Bulk", {"schemas": [BULK], "Operations": ops, **extra}),
                     200)["Operations"])


def user_id(result: dict[str, Any]) -> str:
    return str(result["location"].rsplit("/", 1)[1])


def test_reverse_order_bulk_ids_resolve(scim: Scim) -> None:
    """Each operation waits exactly for the POSTs it names; the answer is in request
    order and every reference holds the id its POST created."""
    ops = reverse_chain(40)
    ops.insert(0, {"method": "PATCH", "path": "/Users/bulkId:u39", "data": {
        "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title",
                                                "value": "Boss"}]}})  # fmt: skip
    ops.insert(1, {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
        "schemas": [GROUP], "displayName": "Chain",
        "members": [{"value": "bulkId:u0"}, {"value": "bulkId:u39"}]}})
    results = bulk(scim, ops)
    assert [r["status"] for r in results] == ["200"] + ["201"] * 41
    assert [r.get("bulkId") for r in results[2:]] == [f"u{i}" for i in range(40)]
    ids = [user_id(r) for r in results[2:]]
    for i in range(39):
        doc = body(scim.get(f"/Users/{ids[i]}"), 200)
        assert doc[ENTERPRISE]["manager"]["value"] == ids[i + 1]
    assert body(scim.get(f"/Users/{ids[39]}"), 200)["title"] == "Boss"
    group = body(scim.get(f"/Groups/{user_id(results[1])}"), 200)
    assert sorted(m["value"] for m in group["members"]) == sorted([ids[0], ids[39]])


class WorkCounter:
    """Counts the bulk module's units of work: operations executed, bulkId
    references looked up, and reads of request attributes (``get_ci``, called by
    the old code on every retry of a waiting operation)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts = {"execute": 0, "lookup": 0, "get_ci": 0}
        for name in self.counts:
            real = getattr(scim_bulk, name)
            monkeypatch.setattr(scim_bulk, name, self._counting(name, real))

    def _counting(self, name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return real(*args, **kwargs)
        return wrapper

    def measure(self, scim: Scim, ops: list[dict[str, Any]]) -> dict[str, int]:
        for name in self.counts:
            self.counts[name] = 0
        assert {r["status"] for r in bulk(scim, ops)} == {"201"}
        return dict(self.counts)


def test_reverse_order_bulk_costs_linear_work(scim: Scim,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's reverse-order Bulk (quadratic before: about 1,000 operations ran
    into the 30 s worker timeout). Work is counted, not timed: every operation runs
    once, every reference is looked up once, and the bookkeeping per operation is
    the same whatever the order and the size."""
    counter = WorkCounter(monkeypatch)
    forward = counter.measure(scim, list(reversed(reverse_chain(150, "f"))))
    backward = counter.measure(scim, reverse_chain(150, "b"))
    double = counter.measure(scim, reverse_chain(300, "d"))
    assert backward == forward
    assert backward["execute"] == 150 and backward["lookup"] == 149
    assert double["execute"] == 300 and double["lookup"] == 299
    fixed = 3  # get_ci on the BulkRequest itself
    assert double["get_ci"] - fixed == 2 * (backward["get_ci"] - fixed)


def test_circular_references_are_409_not_a_hang(scim: Scim,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A cycle (and what waits on it) is 409 ``invalidValue`` (RFC 7644 §3.7.1)
    without running any of it; the rest of the request is unaffected."""
    counter = WorkCounter(monkeypatch)
    results = bulk(scim, [
        managed_by("a", "b"), managed_by("b", "a"),              # a two-cycle
        managed_by("self", "self"),                              # a self-reference
        managed_by("after", "a"),                                # waits on the cycle
        {"method": "DELETE", "path": "/Users/bulkId:b"},         # waits on the cycle
        managed_by("free", None),
    ])
    assert [r["status"] for r in results] == ["409"] * 5 + ["201"]
    for r in results[:5]:
        assert r["response"]["scimType"] == "invalidValue"
        assert "circular" in r["response"]["detail"]
    assert counter.counts["execute"] == 1
    listed = body(scim.get("/Users"), 200)
    assert [u["userName"] for u in listed["Resources"]] == ["free@acme.example"]


def test_unresolvable_and_duplicate_bulk_ids(scim: Scim) -> None:
    """A bulkId no POST defines, or whose POST failed, is 409 naming the reason; a
    bulkId used by two POSTs is 400 for the second."""
    results = bulk(scim, [
        managed_by("orphan", "nobody"),
        {"method": "POST", "path": "/Users", "bulkId": "bad",
         "data": {"schemas": [USER], "userName": ""}},           # fails: 400
        managed_by("child", "bad"),
        managed_by("twin", None), managed_by("twin", None),
    ])
    assert [r["status"] for r in results] == ["409", "400", "409", "201", "400"]
    assert "no POST" in results[0]["response"]["detail"]
    assert "failed" in results[2]["response"]["detail"]
    assert results[4]["response"]["scimType"] == "invalidValue"


def _settings(app: Flask) -> Any:
    from idp.services import settings

    with app.app_context():
        return settings()


def test_time_budget_stops_between_operations(app: Flask, scim: Scim,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that advances 4 s per operation and a 10 s budget: three operations
    run (t = 0, 4, 8), the others are answered 503 "not run" with nothing done, and
    nothing runs after the budget (no worker timeout, no 500)."""
    monkeypatch.setattr(_settings(app), "scim_bulk_seconds", 10.0)
    now = [0.0]
    real_execute = scim_bulk.execute

    def slow_execute(*args: Any) -> Any:
        now[0] += 4.0
        return real_execute(*args)

    monkeypatch.setattr(scim_bulk, "clock", lambda: now[0])
    monkeypatch.setattr(scim_bulk, "execute", slow_execute)
    results = bulk(scim, [*reverse_chain(6), managed_by("x", None)])
    assert [r["status"] for r in results] == ["503"] * 3 + ["201"] * 3 + ["503"]
    # the chain runs from its end: u5, u4, u3 were created
    assert [r["bulkId"] for r in results if r["status"] == "201"] == ["u3", "u4", "u5"]
    for r in results:
        if r["status"] == "503":
            assert "time budget" in r["response"]["detail"]
            assert r["response"]["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body(scim.get("/Users"), 200)["totalResults"] == 3


def test_bulk_caps_are_advertised_and_413(app: Flask, scim: Scim,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``maxOperations`` (IDP_SCIM_BULK_MAX_OPERATIONS) and ``maxPayloadSize`` as
    advertised; above them 413 in the SCIM error schema naming the limit (RFC 7644
    §3.7.4), before any operation runs."""
    monkeypatch.setattr(_settings(app), "scim_bulk_max_operations", 5)
    spc = body(scim.get("/ServiceProviderConfig"), 200)["bulk"]
    assert spc == {"supported": True, "maxOperations": 5,
                   "maxPayloadSize": scim_bulk.MAX_PAYLOAD}
    assert len(bulk(scim, reverse_chain(5))) == 5
    doc = error(scim.post("/Bulk", {"schemas": [BULK], "Operations": reverse_chain(6, "v")}),
                413)
    assert "maxOperations (5)" in doc["detail"]
    assert body(scim.get('/Users?filter=userName sw "v"'), 200)["totalResults"] == 0
    big = {"schemas": [BULK], "Operations": [managed_by("w" * (1100 * 1024), None)]}
    doc = error(scim.post("/Bulk", big), 413)
    assert f"maxPayloadSize ({scim_bulk.MAX_PAYLOAD}" in doc["detail"]
