"""``/Bulk`` (RFC 7644 §3.7): bulkId references (also forward ones), versions,
``failOnErrors``, and the limits that give 413."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from tests.support.scim import GROUP, USER, Scim, body, create_token, error, make_unit

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


@pytest.fixture
def scim(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> Scim:
    make_unit(app, "acme")
    return Scim(client, create_token(runner, "acme"))


def user_op(bulk_id: str, name: str) -> dict[str, Any]:
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id,
            "data": {"schemas": [USER], "userName": f"{name}@acme.example"}}


def test_bulk_with_forward_references(scim: Scim) -> None:
    resp = scim.post("/Bulk", {"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"schemas": [GROUP], "displayName": "Team",
                  "members": [{"value": "bulkId:ann"}, {"value": "bulkId:bob"}]}},
        user_op("ann", "ann"),
        user_op("bob", "bob"),
        {"method": "PATCH", "path": "/Users/bulkId:bob", "data": {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}]}},
    ]})
    doc = body(resp, 200)
    assert doc["schemas"] == [BULK_RESPONSE]
    results = doc["Operations"]
    assert [r["status"] for r in results] == ["201", "201", "201", "200"]
    assert [r.get("bulkId") for r in results] == ["g", "ann", "bob", None]
    ann = results[1]["location"].rsplit("/", 1)[1]
    bob = results[2]["location"].rsplit("/", 1)[1]
    group = body(scim.get(results[0]["location"].split("/scim/v2")[1]), 200)
    assert sorted(m["value"] for m in group["members"]) == sorted([ann, bob])
    assert body(scim.get(f"/Users/{bob}"), 200)["active"] is False
    assert results[3]["version"] == body(scim.get(f"/Users/{bob}"), 200)["meta"]["version"]


def test_bulk_errors_and_fail_on_errors(scim: Scim) -> None:
    existing = body(scim.post("/Users", {"schemas": [USER], "userName": "x@acme.example"}), 201)
    resp = scim.post("/Bulk", {"schemas": [BULK], "failOnErrors": 2, "Operations": [
        user_op("dup", "x"),                                              # 409
        {"method": "PUT", "path": f"/Users/{existing['id']}", "version": 'W/"42"',
         "data": {"schemas": [USER], "userName": "x@acme.example"}},     # 412
        user_op("never", "never"),                                        # not run
    ]})
    results = body(resp, 200)["Operations"]
    assert [r["status"] for r in results] == ["409", "412"]
    assert results[0]["response"]["scimType"] == "uniqueness"
    assert body(scim.get('/Users?filter=userName eq "never@acme.example"'), 200)[
        "totalResults"] == 0

    resp = scim.post("/Bulk", {"schemas": [BULK], "Operations": [
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "path": "/Users", "data": {"schemas": [USER], "userName": "n"}},
        {"method": "DELETE", "path": "/Nothing/1"},
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"schemas": [GROUP], "displayName": "G", "members": [{"value": "bulkId:zz"}]}},
        {"method": "DELETE", "path": f"/Users/{existing['id']}"},
    ]})
    results = body(resp, 200)["Operations"]
    assert [r["status"] for r in results] == ["400", "400", "400", "409", "204"]


def test_bulk_limits_are_413(scim: Scim) -> None:
    ops = [user_op(f"u{i}", f"u{i}") for i in range(1001)]
    error(scim.post("/Bulk", {"schemas": [BULK], "Operations": ops}), 413)
    big = {"schemas": [BULK], "Operations": [user_op("a", "a" * (1100 * 1024))]}
    error(scim.post("/Bulk", big), 413)


@pytest.mark.parametrize("bad", [
    {"Operations": []},
    {"schemas": [BULK], "Operations": "x"},
    {"schemas": [BULK], "failOnErrors": 0, "Operations": []},
    {"schemas": [BULK], "failOnErrors": "1", "Operations": []},
])
def test_malformed_bulk_requests(scim: Scim, bad: dict[str, Any]) -> None:
    doc = body(scim.post("/Bulk", bad), 400)
    assert doc["scimType"] in ("invalidSyntax", "invalidValue")
