"""Replay of what Microsoft Entra ID's provisioning service sends (Microsoft's SCIM
tutorial and its "known issues with SCIM 2.0 compliance" page): query by userName,
create with the enterprise extension, capitalised PATCH operations with value
paths, string booleans, manager by bare id, the compliant multi-attribute replace,
group lookup with ``excludedAttributes=members``, membership add and both removal
styles, delete."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from tests.support.scim import (
    ENTERPRISE,
    GROUP,
    USER,
    Scim,
    access,
    account,
    audit_actions,
    body,
    create_token,
    make_unit,
    roles,
)

USER_NAME = "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
EMAIL = "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
ENTRA_USER: dict[str, Any] = {
    "schemas": [USER, ENTERPRISE],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": USER_NAME,
    "active": True,
    "emails": [{"primary": True, "type": "work", "value": EMAIL}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "givenName familyName", "familyName": "familyName",
             "givenName": "givenName"},
    "roles": [],
    ENTERPRISE: {"employeeNumber": "99887766", "costCenter": "CC-4711",
                 "department": "Purchasing"},
}


@pytest.fixture
def unit_id(app: Flask) -> str:
    return make_unit(app, "contoso",
                     verified=("testuser.com", "microsoft.com", "test.microsoft.com"))


@pytest.fixture
def entra(client: FlaskClient, runner: FlaskCliRunner, unit_id: str) -> Scim:
    return Scim(client, create_token(runner, "contoso", "Entra"))


def test_entra_user_lifecycle(app: Flask, entra: Scim) -> None:
    query = f'/Users?filter=userName eq "{USER_NAME}"'
    assert body(entra.get(query), 200)["totalResults"] == 0
    assert body(entra.get('/Users?filter=userName eq "non-existent user"'), 200) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}

    created = body(entra.post("/Users", ENTRA_USER), 201)
    uid = created["id"]
    assert created["userName"] == USER_NAME
    assert created["emails"][0]["value"] == EMAIL.lower()
    assert created[ENTERPRISE] == {"employeeNumber": "99887766", "costCenter": "CC-4711",
                                   "department": "Purchasing"}
    row = account(app, uid)
    facts = access(app, uid)  # employer facts are the unit's access's
    assert facts is not None
    assert (facts.personnel_number, facts.cost_centre, facts.department) == (
        "99887766", "CC-4711", "Purchasing")
    assert row.email == EMAIL.lower()

    assert body(entra.get(f"/Users/{uid}"), 200)["id"] == uid
    found = body(entra.get(query), 200)
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == uid
    # Entra also matches on the work address.
    found = body(entra.get(f'/Users?filter=emails[type eq "work"].value eq "{EMAIL}"'), 200)
    assert [r["id"] for r in found["Resources"]] == [uid]
    found = body(entra.get('/Users?filter=externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef'),
                 200)
    assert [r["id"] for r in found["Resources"]] == [uid]

    # Update [multi-valued properties]: capitalised ops, value path.
    resp = entra.patch(
        f"/Users/{uid}",
        {"op": "Replace", "path": 'emails[type eq "work"].value',
         "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    doc = body(resp, 200)
    assert doc["emails"] == [{"value": "updatedemail@microsoft.com", "type": "work",
                              "primary": True}]
    assert doc["name"]["familyName"] == "updatedFamilyName"
    assert doc["name"]["formatted"] == "givenName updatedFamilyName"

    # Update [single-valued properties].
    new_name = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    doc = body(entra.patch(f"/Users/{uid}", {"op": "Replace", "path": "userName",
                                             "value": new_name}), 200)
    assert doc["userName"] == new_name

    # Without the aadOptscim062020 flag: "Add" of a single-valued attribute.
    doc = body(entra.patch(f"/Users/{uid}", {"op": "Add", "path": "title",
                                             "value": "Buyer"}), 200)
    assert doc["title"] == "Buyer"

    # Manager as a bare id, then removed.
    manager = body(entra.post("/Users", {**ENTRA_USER, "userName": "boss",
                                         "externalId": "boss",
                                         "emails": [{"primary": True, "type": "work",
                                                     "value": "boss@testuser.com"}]}), 201)
    doc = body(entra.patch(f"/Users/{uid}", {
        "op": "Add", "path": f"{ENTERPRISE}:manager", "value": manager["id"]}), 200)
    assert doc[ENTERPRISE]["manager"] == {"value": manager["id"]}
    found = body(entra.get(f'/Users?filter={ENTERPRISE}:manager.value eq "{manager["id"]}"'),
                 200)
    assert [r["id"] for r in found["Resources"]] == [uid]
    doc = body(entra.patch(f"/Users/{uid}", {"op": "Remove",
                                             "path": f"{ENTERPRISE}:manager"}), 200)
    assert "manager" not in doc[ENTERPRISE]

    # The compliant multi-attribute replace (dotted and URN-qualified keys).
    doc = body(entra.patch(
        f"/Users/{uid}",
        {"op": "replace", "path": 'emails[type eq "work"].value',
         "value": "TestMhvaes@test.microsoft.com"},
        {"op": "replace", "value": {
            "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            f"{ENTERPRISE}:employeeNumber": "Aklq"}},
    ), 200)
    assert doc["displayName"] == "Bjfe" and doc["name"]["givenName"] == "Kkom"
    assert doc[ENTERPRISE]["employeeNumber"] == "Aklq"
    assert doc["emails"][0]["value"] == "testmhvaes@test.microsoft.com"

    # Disable: the string boolean of the default (non-flagged) behaviour.
    doc = body(entra.patch(f"/Users/{uid}", {"op": "Replace", "path": "active",
                                             "value": "False"}), 200)
    assert doc["active"] is False
    assert not account(app, uid).can_sign_in
    doc = body(entra.patch(f"/Users/{uid}", {"op": "replace", "path": "active",
                                             "value": True}), 200)
    assert doc["active"] is True and account(app, uid).can_sign_in

    # Delete: 204, gone for SCIM, profile anonymised, audit kept.
    assert entra.delete(f"/Users/{uid}").status_code == 204
    assert entra.get(f"/Users/{uid}").status_code == 404
    assert body(entra.get(query), 200)["totalResults"] == 0
    row = account(app, uid)
    assert row.status == "deleted" and not row.can_sign_in
    assert row.email.endswith("@deleted.invalid") and row.given_name == ""
    assert access(app, uid) is None  # the unit's access and its facts are gone
    assert row.field_owners == {}
    actions = [a for _, a in audit_actions(app, uid)]
    assert "account.provisioned" in actions and "account.deprovisioned" in actions
    # The same userName can be provisioned again: a new account.
    again = body(entra.post("/Users", ENTRA_USER), 201)
    assert again["id"] != uid


def test_entra_group_operations(app: Flask, entra: Scim, unit_id: str, runner: FlaskCliRunner
                                ) -> None:  # fmt: skip
    from idp.cli import main

    result = runner.invoke(main, ["scim-group-roles", "add", "--unit", "contoso",
                                  "--group", "purchasing team", "--role", "buyer"])
    assert result.exit_code == 0, result.output
    uid = body(entra.post("/Users", ENTRA_USER), 201)["id"]
    other = body(entra.post("/Users", {**ENTRA_USER, "userName": "other", "externalId": "o",
                                       "emails": [{"primary": True, "type": "work",
                                                   "value": "other@testuser.com"}]}), 201)["id"]

    lookup = '/Groups?excludedAttributes=members&filter=displayName eq "Purchasing Team"'
    assert body(entra.get(lookup), 200)["totalResults"] == 0
    created = body(entra.post("/Groups", {
        "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Purchasing Team",
        "meta": {"resourceType": "Group"},
    }), 201)
    gid = created["id"]
    assert created["members"] == [] and created["externalId"].startswith("8aa1a0c0")

    got = body(entra.get(f"/Groups/{gid}?excludedAttributes=members"), 200)
    assert "members" not in got and got["displayName"] == "Purchasing Team"
    found = body(entra.get(lookup), 200)
    assert [r["id"] for r in found["Resources"]] == [gid]
    assert "members" not in found["Resources"][0]

    # Add members: 204 No Content, as Entra prefers.
    resp = entra.patch(f"/Groups/{gid}", {"op": "Add", "path": "members",
                                          "value": [{"$ref": None, "value": uid}]})
    assert resp.status_code == 204
    assert roles(app, uid, unit_id) == ["employee", "buyer"]
    assert roles(app, other, unit_id) == ["employee"]
    # "Is this user a member?" as Entra asks it.
    member_query = (f'/Groups?filter=id eq "{gid}" and members[value eq "{uid}"]'
                    "&excludedAttributes=members")
    assert body(entra.get(member_query), 200)["totalResults"] == 1
    assert entra.patch(f"/Groups/{gid}", {"op": "Add", "path": "members",
                                          "value": [{"value": other}]}).status_code == 204

    # Remove, old style: path members with a value list.
    resp = entra.patch(f"/Groups/{gid}", {"op": "Remove", "path": "members",
                                          "value": [{"$ref": None, "value": uid}]})
    assert resp.status_code == 204
    assert body(entra.get(member_query), 200)["totalResults"] == 0
    assert roles(app, uid, unit_id) == ["employee"]
    # Remove, with the aadOptscim062020 flag: a value filter.
    resp = entra.patch(f"/Groups/{gid}", {"op": "remove",
                                          "path": f'members[value eq "{other}"]'})
    assert resp.status_code == 204
    assert body(entra.get(f"/Groups/{gid}"), 200)["members"] == []

    # Update [non-member attributes].
    resp = entra.patch(f"/Groups/{gid}", {"op": "Replace", "path": "displayName",
                                          "value": "1879db59updatedDisplayName"})
    assert resp.status_code == 204
    assert body(entra.get(f"/Groups/{gid}"), 200)["displayName"] == "1879db59updatedDisplayName"

    assert entra.delete(f"/Groups/{gid}").status_code == 204
    assert entra.get(f"/Groups/{gid}").status_code == 404
    assert ("scim:Entra", "group.deleted") in audit_actions(app, gid)


def test_entra_schema_discovery(entra: Scim) -> None:
    from scim2_models import Context, Schema

    listing = body(entra.get("/Schemas"), 200)
    ids = [s["id"] for s in listing["Resources"]]
    assert ids == [USER, ENTERPRISE, GROUP]
    for doc in listing["Resources"]:
        Schema.model_validate(doc, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    user = listing["Resources"][0]
    names = {a["name"] for a in user["attributes"]}
    assert {"userName", "name", "emails", "active", "externalId"} <= names
    assert "password" not in names and "addresses" not in names
    user_name = next(a for a in user["attributes"] if a["name"] == "userName")
    assert user_name["required"] is True and user_name["uniqueness"] == "server"
    assert user_name["mutability"] == "readWrite" and user_name["caseExact"] is False
