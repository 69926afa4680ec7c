"""The provisioning domain behind SCIM: field ownership, deactivation cutting access,
deprovisioning with anonymisation and kept audit, group-to-role rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.accounts import accesses
from idp.provisioning import service as provisioning
from idp.provisioning import unit_groups
from idp.provisioning.service import Actor, DirectoryUser
from idp.store.db import db
from idp.store.models import Access, AuditEvent, Grant, Session, utcnow
from tests.support.login import stand_in_merchant
from tests.support.scim import (
    GROUP,
    USER,
    Scim,
    account,
    body,
    create_token,
    make_unit,
    roles,
)

HR = Actor("scim", "scim:test")


@pytest.fixture
def unit(app: Flask) -> str:
    return make_unit(app, "acme", fields=("ship_to",), verified=("acme.example",))


def provision(app: Flask, unit: str, name: str = "ann", **fields: Any) -> str:
    with app.app_context():
        user = DirectoryUser(user_name=f"{name}@acme.example", **fields)
        return provisioning.create_user(unit, user, HR).id


def test_employee_cannot_overwrite_what_hr_owns(app: Flask, unit: str) -> None:
    uid = provision(app, unit, given_name="Ann", extras={"ship_to": "Dock 1"})
    with app.app_context():
        access = accesses.find(uid, unit)
        editable = provisioning.employee_editable(account(app, uid), access, ["ship_to"])
        assert "given_name" not in editable and "extra.ship_to" not in editable
        assert "phone_number" in editable and "cost_centre" in editable
        with pytest.raises(provisioning.FieldOwned):  # the unit's fact, owned by its HR
            provisioning.employee_update(uid, {"extra.ship_to": "Home"}, "me", unit)
        with pytest.raises(provisioning.FieldOwned):
            provisioning.employee_update(uid, {"phone_number": "+1", "given_name": "X"}, "me")
        # Nothing was written, not even the allowed field.
        assert account(app, uid).phone_number is None
        provisioning.employee_update(uid, {"phone_number": "+49 1"}, "employee:ann")
    row = account(app, uid)
    assert row.phone_number == "+49 1" and row.given_name == "Ann"


def test_source_ranks(app: Flask, unit: str) -> None:
    uid = provision(app, unit, given_name="Ann")
    sso = Actor("sso", "sso:upstream")

    def rename(value: str) -> Any:
        def change(u: DirectoryUser) -> DirectoryUser:
            u.given_name = value
            return u
        return change

    with app.app_context():
        with pytest.raises(provisioning.FieldOwned):
            provisioning.update_user(unit, uid, rename("Upstream"), sso)
        provisioning.update_user(unit, uid, rename("Anna"), Actor("ldap", "ldap-sync:acme"))
    assert account(app, uid).field_owners["given_name"] == "ldap"

    def move(u: DirectoryUser) -> DirectoryUser:
        u.department = "Logistics"
        return u

    # An employer fact's owner is kept on the unit's access, not on the account.
    with app.app_context():
        provisioning.update_user(unit, uid, move, Actor("ldap", "ldap-sync:acme"))
        access = accesses.find(uid, unit)
        assert access is not None and access.field_owners["department"] == "ldap"
        assert "department" not in account(app, uid).field_owners
        with pytest.raises(provisioning.FieldOwned):
            provisioning.employee_update(uid, {"department": "Sales"}, "employee:ann", unit)


def test_deactivation_cuts_access_and_reactivation_restores(app: Flask, unit: str) -> None:
    uid = provision(app, unit)
    now = utcnow()
    with app.app_context():
        db.session.add(Session(id_hash="h" * 64, account_id=uid,
                               expires_at=now + timedelta(hours=1)))
        db.session.add(Grant(id="g" * 32, account_id=uid, client_id="shop",
                             merchant_id=stand_in_merchant("shop"),
                             expires_at=now + timedelta(days=1)))
        db.session.commit()

    def active(value: bool) -> Any:
        def change(u: DirectoryUser) -> DirectoryUser:
            u.active = value
            return u
        return change

    with app.app_context():
        provisioning.update_user(unit, uid, active(False), HR)
        assert db.session.query(Session).filter_by(account_id=uid).count() == 0
        assert db.session.get(Grant, "g" * 32).revoked_at is not None
    assert not account(app, uid).can_sign_in
    with app.app_context():
        provisioning.update_user(unit, uid, active(True), HR)
    assert account(app, uid).can_sign_in
    # An account blocked by someone else is not unblocked by SCIM.
    with app.app_context():
        row = db.session.get(type(account(app, uid)), uid)
        row.status = "blocked"
        db.session.commit()
        provisioning.update_user(unit, uid, active(True), HR)
    assert account(app, uid).status == "blocked"


def test_delete_anonymises_and_keeps_audit(app: Flask, unit: str) -> None:
    uid = provision(app, unit, given_name="Ann", family_name="Secret", phone_number="+1",
                    personnel_number="P1", extras={"ship_to": "Dock"})
    with app.app_context():
        provisioning.delete_user(unit, uid, HR)
        with pytest.raises(provisioning.NotFound):
            provisioning.get_user(unit, uid)
        assert db.session.query(Access).filter_by(account_id=uid).count() == 0
        events = db.session.query(AuditEvent).filter_by(target=uid).all()
    row = account(app, uid)
    assert row.status == "deleted" and row.email == f"deleted-{uid}@deleted.invalid"
    assert (row.given_name, row.family_name, row.phone_number) == ("", "", None)
    assert row.field_owners == {}  # and the facts went with the access (none left above)
    assert {e.action for e in events} >= {"account.provisioned", "account.deprovisioned"}
    text = repr([(e.details, e.actor, e.action) for e in events])
    for secret in ("Secret", "+1", "P1", "Dock", "ann@acme.example"):
        assert secret not in text


def test_group_role_rules(app: Flask, client: FlaskClient, runner: FlaskCliRunner,
                          unit: str) -> None:  # fmt: skip
    scim = Scim(client, create_token(runner, "acme"))
    ann = provision(app, unit, "ann")
    bob = provision(app, unit, "bob")
    with app.app_context():
        m = db.session.query(Access).filter_by(account_id=ann, unit_id=unit).one()
        m.roles = ["main_user"]  # given by someone else: never touched by the rules
        db.session.commit()
        unit_groups.add_role_rule(unit, "Purchasing", "buyer", "test")
        unit_groups.add_role_rule(unit, "Approvers", "approver", "test")
    gid = body(scim.post("/Groups", {"schemas": [GROUP], "displayName": "PURCHASING",
                                     "members": [{"value": ann}, {"value": bob}]}), 201)["id"]
    assert roles(app, ann, unit) == ["main_user", "buyer"]
    assert roles(app, bob, unit) == ["employee", "buyer"]
    # Rename to a name another rule maps: roles follow.
    assert scim.patch(f"/Groups/{gid}", {"op": "replace", "path": "displayName",
                                         "value": "approvers"}).status_code == 204
    assert roles(app, ann, unit) == ["main_user", "approver"]
    # Removing the rule takes the role away again.
    with app.app_context():
        assert unit_groups.remove_role_rule(unit, "APPROVERS", "approver", "test")
    assert roles(app, ann, unit) == ["main_user"]
    # A rule added later applies to existing members at once.
    with app.app_context():
        unit_groups.add_role_rule(unit, "approvers", "signer", "test")
    assert roles(app, bob, unit) == ["employee", "signer"]
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert roles(app, bob, unit) == ["employee"] and roles(app, ann, unit) == ["main_user"]
    with app.app_context(), pytest.raises(provisioning.InvalidValue):
        unit_groups.add_role_rule(unit, "Purchasing", "no-such-role", "test")


def test_user_documents_are_case_insensitive_and_lenient(app: Flask, client: FlaskClient,
                                                         runner: FlaskCliRunner,
                                                         unit: str) -> None:  # fmt: skip
    scim = Scim(client, create_token(runner, "acme"))
    doc = body(scim.post("/Users", {"SCHEMAS": [USER], "USERNAME": "Z@ACME.example",
                                    "Name": {"GIVENNAME": "Zoe"}, "nickName": "ignored",
                                    "Active": "False", "x509Certificates": []}), 201)
    assert doc["userName"] == "Z@ACME.example" and doc["name"]["givenName"] == "Zoe"
    assert doc["active"] is False and doc["emails"][0]["value"] == "z@acme.example"
    assert "nickName" not in doc


def test_scim_never_adopts_an_account_an_ldap_directory_manages(app: Flask, unit: str) -> None:
    """An account the LDAP sync created stays the directory's: a SCIM create with the
    same address is a uniqueness conflict, not a silent take-over."""
    from idp.provisioning.errors import Conflict
    from idp.store.models import Account, LdapDirectory, LdapLink

    with app.app_context():
        directory = LdapDirectory(
            unit_id=unit, url="ldap://127.0.0.1:1", bind_dn="cn=admin", base_dn="dc=x",
            bind_password_sealed="", user_filter="(objectClass=person)", id_attribute="entryUUID",
        )
        account_row = Account(email="ann@acme.example", email_verified=True)
        db.session.add_all([directory, account_row])
        db.session.flush()
        accesses.create(account_row.id, unit, ["employee"], "test", event=None)
        db.session.add(LdapLink(directory_id=directory.id, account_id=account_row.id,
                                external_id="guid-1", dn="uid=ann,dc=x"))
        db.session.commit()
    with pytest.raises(Conflict):
        provision(app, unit, "ann")
