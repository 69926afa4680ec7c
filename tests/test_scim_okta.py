"""Replay of what Okta's SCIM 2.0 client sends (Okta's SCIM 2.0 protocol reference):
user lookup by filter, create, import pages, PUT updates, PATCH deactivation and
reactivation, group push with membership add/remove/replace, rename, delete."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from tests.support import oidc
from tests.support.scim import (
    GROUP,
    LIST,
    PATCH_OP,
    USER,
    Scim,
    account,
    audit_actions,
    body,
    create_token,
    make_unit,
)

OKTA_USER: dict[str, Any] = {
    "schemas": [USER],
    "userName": "test.user@okta.local",
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
}


@pytest.fixture
def okta(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> Scim:
    make_unit(app, "acme", verified=("okta.local",))
    return Scim(client, create_token(runner, "acme", "Okta"))


def create_user(okta: Scim, **changes: Any) -> dict[str, Any]:
    return body(okta.post("/Users", {**OKTA_USER, **changes}), 201)


def test_okta_user_lifecycle(app: Flask, okta: Scim) -> None:
    # 1. Does the user exist? Okta filters on userName with startIndex/count.
    found = body(okta.get('/Users?filter=userName%20eq%20%22test.user%40okta.local%22'
                          "&startIndex=1&count=100"), 200)
    assert found == {"schemas": [LIST], "totalResults": 0, "startIndex": 1,
                     "itemsPerPage": 0, "Resources": []}

    # 2. Create it (the password is accepted and ignored: users sign in by e-mail code).
    resp = okta.post("/Users", OKTA_USER)
    user = body(resp, 201)
    uid = user["id"]
    assert resp.headers["Location"] == f"http://localhost/scim/v2/Users/{uid}"
    assert resp.headers["ETag"] == user["meta"]["version"] == 'W/"1"'
    assert user["userName"] == "test.user@okta.local"
    assert user["name"] == {"givenName": "Test", "familyName": "User",
                            "formatted": "Test User"}
    assert user["emails"] == [{"value": "test.user@okta.local", "type": "work",
                               "primary": True}]
    assert user["active"] is True and user["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert user["groups"] == [] and "password" not in user
    assert user["meta"]["resourceType"] == "User"
    row = account(app, uid)
    assert row.email == "test.user@okta.local" and row.can_sign_in
    assert row.field_owners["given_name"] == "scim" and row.locale == "en-US"

    # 3. The same lookup now finds exactly this user; so does a retrieve by id.
    found = body(okta.get('/Users?filter=userName eq "TEST.USER@okta.local"'
                          "&startIndex=1&count=100"), 200)
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == uid
    assert body(okta.get(f"/Users/{uid}"), 200)["userName"] == "test.user@okta.local"

    # 4. A second create of the same userName is a conflict that stops Okta's job.
    resp = okta.post("/Users", OKTA_USER)
    assert resp.status_code == 409 and body(resp, 409)["scimType"] == "uniqueness"

    # 5. Profile update: GET, change, PUT the whole object back.
    current = body(okta.get(f"/Users/{uid}"), 200)
    current["name"] = {"givenName": "Another", "middleName": "Excited", "familyName": "User"}
    updated = body(okta.put(f"/Users/{uid}", current), 200)
    assert updated["name"]["givenName"] == "Another"
    assert updated["meta"]["version"] == 'W/"2"'
    assert account(app, uid).given_name == "Another"

    # 6. Deactivation: PATCH replace without path.
    resp = okta.patch(f"/Users/{uid}", {"op": "replace", "value": {"active": False}})
    assert body(resp, 200)["active"] is False
    row = account(app, uid)
    assert row.status == "deactivated" and not row.can_sign_in

    # 7. Reactivation restores access.
    resp = okta.patch(f"/Users/{uid}", {"op": "replace", "value": {"active": True}})
    assert body(resp, 200)["active"] is True
    assert account(app, uid).can_sign_in

    actions = {a for _, a in audit_actions(app, uid)}
    assert {"account.provisioned", "account.updated", "account.deactivated",
            "account.reactivated"} <= actions
    assert {actor for actor, _ in audit_actions(app, uid)} == {"scim:Okta"}


def test_okta_put_keeps_fields_it_does_not_own(app: Flask, okta: Scim) -> None:
    """An employee-entered phone number survives Okta's PUT that does not mention it."""
    uid = create_user(okta)["id"]
    from idp.provisioning import service as provisioning

    with app.app_context():
        provisioning.employee_update(uid, {"phone_number": "+49 30 123"}, "employee:test")
    current = body(okta.get(f"/Users/{uid}"), 200)
    assert current["phoneNumbers"][0]["value"] == "+49 30 123"
    del current["phoneNumbers"]
    current["title"] = "Buyer"
    body(okta.put(f"/Users/{uid}", current), 200)
    row = account(app, uid)
    assert row.phone_number == "+49 30 123"
    # A field SCIM owns is cleared when the PUT leaves it out.
    current = body(okta.get(f"/Users/{uid}"), 200)
    del current["locale"]
    assert "locale" not in body(okta.put(f"/Users/{uid}", current), 200)
    assert account(app, uid).locale is None


def test_okta_import_pages_are_stable(okta: Scim) -> None:
    ids = [create_user(okta, userName=f"u{i}@acme.example", emails=[],
                       externalId=f"ext{i}")["id"] for i in range(7)]  # fmt: skip
    seen = []
    start = 1
    while True:
        page = body(okta.get(f"/Users?startIndex={start}&count=3"), 200)
        assert page["totalResults"] == 7 and page["startIndex"] == start
        seen += [r["id"] for r in page["Resources"]]
        if start + page["itemsPerPage"] > page["totalResults"]:
            break
        start += page["itemsPerPage"]
    assert seen == ids


def test_okta_group_push(app: Flask, okta: Scim) -> None:
    alice = create_user(okta, userName="alice@acme.example", emails=[])["id"]
    bob = create_user(okta, userName="bob@acme.example", emails=[])["id"]

    # Push: create the group with no members.
    resp = okta.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2",
                                 "members": []})  # fmt: skip
    group = body(resp, 201)
    gid = group["id"]
    assert group["displayName"] == "Test SCIMv2" and group["members"] == []
    assert group["meta"]["resourceType"] == "Group"

    # Access update: remove one (by value filter) and add one, in one PATCH.
    resp = okta.patch(
        f"/Groups/{gid}",
        {"op": "remove", "path": f'members[value eq "{bob}"]'},
        {"op": "add", "path": "members", "value": [{"value": alice,
                                                    "display": "alice@acme.example"}]},
    )
    assert resp.status_code == 204
    members = body(okta.get(f"/Groups/{gid}"), 200)["members"]
    assert [m["value"] for m in members] == [alice]
    assert members[0]["type"] == "User" and members[0]["display"] == "Test User"
    assert body(okta.get(f"/Users/{alice}"), 200)["groups"][0]["value"] == gid

    # Full push of the membership with replace.
    resp = okta.patch(f"/Groups/{gid}", {"op": "replace", "path": "members",
                                         "value": [{"value": bob}, {"value": alice}]})
    assert resp.status_code == 204
    members = body(okta.get(f"/Groups/{gid}"), 200)["members"]
    assert sorted(m["value"] for m in members) == sorted([alice, bob])

    # Rename: Okta echoes the id in the value; that is not a change of id.
    resp = okta.call("PATCH", f"/Groups/{gid}", {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv20"}}],
    })
    assert resp.status_code == 204
    assert body(okta.get(f"/Groups/{gid}"), 200)["displayName"] == "Test SCIMv20"

    # Import groups page by page.
    page = body(okta.get("/Groups?startIndex=1&count=100"), 200)
    assert page["totalResults"] == 1 and page["Resources"][0]["id"] == gid

    # Unlink with "delete the group in the target app".
    assert okta.delete(f"/Groups/{gid}").status_code == 204
    assert okta.get(f"/Groups/{gid}").status_code == 404
    assert body(okta.get(f"/Users/{alice}"), 200)["groups"] == []


def test_okta_deactivation_ends_sessions_and_tokens(app: Flask, client: FlaskClient,
                                                    okta: Scim) -> None:  # fmt: skip
    """active=false: the next introspection says inactive, refresh fails, no sign-in."""
    uid = create_user(okta)["id"]
    rp = oidc.register(app)
    tokens = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, uid)).get_json()
    info = client.post("/introspect", data={"token": tokens["access_token"]},
                       headers=rp.basic()).get_json()  # fmt: skip
    assert info["active"] is True

    body(okta.patch(f"/Users/{uid}", {"op": "replace", "value": {"active": False}}), 200)

    for token in (tokens["access_token"], tokens["refresh_token"]):
        info = client.post("/introspect", data={"token": token}, headers=rp.basic()).get_json()
        assert info == {"active": False}
    assert oidc.refresh(client, rp, tokens["refresh_token"]).status_code == 400
    from idp.store import sessions_repo

    with app.app_context():
        assert sessions_repo.for_account(uid) == []
