"""Tenant isolation: a token for unit A gets 404 for unit B's ids, never sees them in
filters or counts, and cannot put them into its groups or adopt their accounts."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from tests.support import oidc
from tests.support.scim import GROUP, USER, Scim, account, body, create_token, error, make_unit


@pytest.fixture
def two(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> dict[str, Any]:
    make_unit(app, "alpha")
    make_unit(app, "beta")
    a = Scim(client, create_token(runner, "alpha", "A"))
    b = Scim(client, create_token(runner, "beta", "B"))
    a_user = body(a.post("/Users", {"schemas": [USER], "userName": "same@alpha.example",
                                    "externalId": "e1"}), 201)
    b_user = body(b.post("/Users", {"schemas": [USER], "userName": "same@beta.example",
                                    "externalId": "e1"}), 201)
    b_group = body(b.post("/Groups", {"schemas": [GROUP], "displayName": "Buyers",
                                      "members": [{"value": b_user["id"]}]}), 201)
    return {"a": a, "b": b, "a_user": a_user["id"], "b_user": b_user["id"],
            "b_group": b_group["id"]}


def test_other_units_ids_are_404(two: dict[str, Any]) -> None:
    a, b_user, b_group = two["a"], two["b_user"], two["b_group"]
    error(a.get(f"/Users/{b_user}"), 404)
    error(a.put(f"/Users/{b_user}", {"schemas": [USER], "userName": "stolen@x.example"}), 404)
    error(a.patch(f"/Users/{b_user}", {"op": "replace", "value": {"active": False}}), 404)
    error(a.delete(f"/Users/{b_user}"), 404)
    error(a.get(f"/Groups/{b_group}"), 404)
    error(a.patch(f"/Groups/{b_group}", {"op": "add", "path": "members",
                                         "value": [{"value": two["a_user"]}]}), 404)
    error(a.delete(f"/Groups/{b_group}"), 404)
    # Unit B still has everything, untouched.
    assert body(two["b"].get(f"/Users/{b_user}"), 200)["active"] is True
    assert len(body(two["b"].get(f"/Groups/{b_group}"), 200)["members"]) == 1


def test_filters_and_counts_never_cross_units(two: dict[str, Any]) -> None:
    a, b_user = two["a"], two["b_user"]
    for query in ('externalId eq "e1"', f'id eq "{b_user}"', 'userName co "same"',
                  'userName eq "same@beta.example"', 'displayName eq "Buyers"',
                  f'groups.value eq "{two["b_group"]}"'):
        found = body(a.get(f"/Users?filter={query}"), 200)
        assert b_user not in [r["id"] for r in found["Resources"]]
        assert found["totalResults"] <= 1
    assert body(a.get("/Users"), 200)["totalResults"] == 1
    assert body(a.get("/Groups"), 200)["totalResults"] == 0
    assert body(a.get(f'/Groups?filter=members[value eq "{b_user}"]'), 200)["totalResults"] == 0
    assert body(a.post("/.search", {"filter": "id pr"}), 200)["totalResults"] == 1


def test_other_units_users_cannot_join_groups(two: dict[str, Any]) -> None:
    a = two["a"]
    error(a.post("/Groups", {"schemas": [GROUP], "displayName": "Mixed",
                             "members": [{"value": two["b_user"]}]}), 400, "invalidValue")
    group = body(a.post("/Groups", {"schemas": [GROUP], "displayName": "Mine"}), 201)
    resp = a.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members",
                                              "value": [{"value": two["b_user"]}]})
    error(resp, 400, "invalidValue")


def test_bulk_cannot_reach_other_units(two: dict[str, Any]) -> None:
    resp = two["a"].post("/Bulk", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "DELETE", "path": f"/Users/{two['b_user']}"}],
    })
    result = body(resp, 200)["Operations"][0]
    assert result["status"] == "404"
    assert body(two["b"].get(f"/Users/{two['b_user']}"), 200)["id"] == two["b_user"]


def test_accounts_of_other_units_are_not_adopted(app: Flask, two: dict[str, Any]) -> None:
    """Unit A cannot take over an existing account of unit B by naming its address: the
    address gives A a pending record of its own (``idp.provisioning.ownership``), the account is
    untouched. Only in a domain A verified is a free account adopted."""
    existing = oidc.make_account(app, "emp@beta.example")
    oidc.make_unit(app, existing, "Beta Two")
    resp = two["a"].post("/Users", {"schemas": [USER], "userName": "emp@beta.example"})
    assert body(resp, 201)["id"] != existing
    assert account(app, existing).status == "active"
    # An account that only belongs to unit A, in a domain A verified, is adopted.
    own = oidc.make_account(app, "emp@alpha.example", phone_number="+1 555")
    with app.app_context():
        from idp.domains import registry as domains
        from idp.store.db import db
        from idp.store.models import Access, Unit

        alpha = db.session.query(Unit).filter_by(slug="alpha").one()
        db.session.add(Access(account_id=own, unit_id=alpha.id, roles=["employee"]))
        db.session.commit()
        domains.claim("alpha", "alpha.example")
        domains.verify_manually("alpha.example", "test fixture", "test")
    adopted = body(two["a"].post("/Users", {"schemas": [USER], "userName": "emp@alpha.example",
                                            "name": {"givenName": "Emma"}}), 201)
    assert adopted["id"] == own and adopted["phoneNumbers"][0]["value"] == "+1 555"
    row = account(app, own)
    assert row.given_name == "Emma" and row.field_owners.get("given_name") == "scim"
    assert "phone_number" not in row.field_owners
