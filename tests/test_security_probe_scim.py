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

from idp import json_limits
from scim import search
from tests.support.scim import (
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

