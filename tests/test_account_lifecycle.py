"""The account lifecycle (:mod:`idp.accounts.lifecycle`) through HTTP and the services: field
ownership holds against every writer, SSO included (federation cannot overwrite what
SCIM or LDAP owns, and owns what it sets); a lapsed domain stops just-in-time
creation; each lifecycle operation writes its audit event with a structured actor.
Runs on every storage backend (SCIM, federation against the real upstream OpenID
provider of ``tests/upstream``, LDAP against the real slapd)."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from connectors import UpstreamIdentity as Asserted
from idp import audit
from idp.accounts import accesses, field_owners
from idp.accounts import lifecycle as accounts
from idp.cli import main
from idp.domains import registry as domains
from idp.federation import accounts as federation
from idp.ldap import sync as ldap_sync
from idp.services import settings
from idp.store import connectors_repo, ldap_repo
from idp.store.models import Account
from tests.support import slapd as ldap_test
from tests.support.dns import DnsServer
from tests.support.scim import ENTERPRISE, USER, Scim, body, create_token, make_unit
from tests.support.upstream import Upstream
from tests.test_federation_flow import GOOGLE, make_connector, sso


@pytest.fixture
def settings_overrides(dns_server: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 0.5}


def events(app: Flask, target: str) -> list[dict[str, Any]]:
    """Every committed audit event about ``target``, in commit order."""
    with app.app_context():
        rows, _cursor = audit.since(0, limit=1000)
        return [audit.describe(r) for r in rows if r.target == target]


def actions(app: Flask, target: str) -> list[tuple[str, str]]:
    """(actor kind, action) of every audit event about ``target``."""
    return [(e["actor"]["kind"], e["action"]) for e in events(app, target)]


def account_of(app: Flask, email: str) -> Account:
    with app.app_context():
        found = accounts.by_email(email)
        assert found is not None
        return found


def owners_of(app: Flask, email: str) -> dict[str, str]:
    with app.app_context():
        found = accounts.by_email(email)
        assert found is not None
        return field_owners.owners(found)


def facts_of(app: Flask, email: str, unit_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The employer facts on the account's access to the unit, and their owners."""
    with app.app_context():
        found = accounts.by_email(email)
        assert found is not None
        access = accesses.find(found.id, unit_id)
        assert access is not None
        values = {n: field_owners.fact_value(access, n) for n in field_owners.FACT_FIELDS}
        return values, field_owners.owners(access)


# --- federation against SCIM -------------------------------------------------------


def test_federation_cannot_overwrite_what_scim_owns(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, upstream: Upstream
) -> None:
    """Alice signs in through Google first (just in time: SSO owns her names on the
    account, her personnel number and department on her access to the unit); then
    HR's SCIM client adopts her account and sets her names and personnel number.
    Her next Google sign-in changes none of them, only what SSO still owns."""
    unit = make_unit(app, "acme", verified=("acme.example",))
    cid = make_connector(app, upstream, unit, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"],
        "default_roles": ["employee"]})
    assert sso(app, client, upstream, cid, "g-alice", GOOGLE).status_code == 303
    assert owners_of(app, "alice@acme.example")["given_name"] == "sso"
    _facts, facts_owned = facts_of(app, "alice@acme.example", unit)
    assert facts_owned["personnel_number"] == facts_owned["department"] == "sso"

    hr = Scim(client, create_token(runner, "acme"))
    created = body(hr.post("/Users", {
        "schemas": [USER, ENTERPRISE], "userName": "alice@acme.example",
        "name": {"givenName": "Alicia", "familyName": "Buyer-HR"},
        ENTERPRISE: {"employeeNumber": "HR-1"}}), 201)
    alice = account_of(app, "alice@acme.example")
    assert created["id"] == alice.id  # adopted, not a second account
    assert owners_of(app, "alice@acme.example")["given_name"] == "scim"

    again = app.test_client()
    changed = {**GOOGLE, "given_name": "Mallory", "employeeId": "P-666",
               "department": "Finance"}
    assert sso(app, again, upstream, cid, "g-alice", changed).status_code == 303
    alice = account_of(app, "alice@acme.example")
    assert (alice.given_name, alice.family_name) == ("Alicia", "Buyer-HR")
    facts, facts_owned = facts_of(app, "alice@acme.example", unit)
    assert facts["personnel_number"] == "HR-1"
    assert facts["department"] == "Finance"  # still SSO's own fact
    assert owners_of(app, "alice@acme.example")["given_name"] == "scim"
    assert facts_owned["personnel_number"] == "scim"
    assert facts_owned["department"] == "sso"
    updated = [e for e in events(app, alice.id) if e["action"] == "account.updated"]
    assert updated[-1]["actor"] == {"kind": "sso", "id": cid, "on_behalf_of": None,
                                    "display": f"connector:{cid}"}
    assert updated[-1]["details"] == {"fields": ["department"]}
    assert ("sso", "federation.account_created") in actions(app, alice.id)


def test_an_hr_write_between_federations_read_and_write_is_not_overwritten(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HR's SCIM client adopts Alice and sets her names and personnel number after a
    Google sign-in of hers has read her account and before it writes: the sign-in's
    write finds the account changed (its version), reads it again and leaves HR's
    values alone (found by the attacker review: it overwrote them)."""
    import threading

    unit = make_unit(app, "acme", verified=("acme.example",))
    cid = make_connector(app, upstream, unit, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"],
        "default_roles": ["employee"]})
    assert sso(app, client, upstream, cid, "g-alice", GOOGLE).status_code == 303
    hr = Scim(app.test_client(), create_token(runner, "acme"))
    original = accounts._stage_upstream_profile
    hr_done: list[dict[str, Any]] = []

    def hr_writes_in_between(*args: Any) -> Any:
        if not hr_done:
            def hr_call() -> None:
                hr_done.append(body(hr.post("/Users", {
                    "schemas": [USER, ENTERPRISE], "userName": "alice@acme.example",
                    "name": {"givenName": "Alicia", "familyName": "Buyer-HR"},
                    ENTERPRISE: {"employeeNumber": "HR-1"}}), 201))
            thread = threading.Thread(target=hr_call)
            thread.start()
            thread.join(30)
            assert hr_done, "HR's write did not commit"
        return original(*args)

    monkeypatch.setattr(accounts, "_stage_upstream_profile", hr_writes_in_between)
    changed = {**GOOGLE, "given_name": "Mallory", "employeeId": "P-666"}
    assert sso(app, app.test_client(), upstream, cid, "g-alice", changed).status_code == 303
    alice = account_of(app, "alice@acme.example")
    assert (alice.given_name, alice.family_name) == ("Alicia", "Buyer-HR")
    facts, facts_owned = facts_of(app, "alice@acme.example", unit)
    assert (facts["personnel_number"], facts_owned["personnel_number"]) == ("HR-1", "scim")
    assert owners_of(app, "alice@acme.example")["given_name"] == "scim"


def test_federation_cannot_overwrite_what_ldap_owns(
    app: Flask, client: FlaskClient, upstream: Upstream, unit_id: str, directory_id: str,
) -> None:
    """A person's account made just in time by an Okta sign-in is adopted by the
    unit's LDAP sync, which then owns the names; the next Okta sign-in keeps the
    directory's values."""
    email = f"{ldap_test.uid(11)}@{ldap_test.MAIL_DOMAIN}"
    cid = make_connector(app, upstream, unit_id, "okta", {"issuer": upstream.okta_custom_issuer})
    okta = {"email": email, "email_verified": True, "given_name": "Fed", "family_name": "Person"}
    assert sso(app, client, upstream, cid, "okta-11", okta).status_code == 303
    assert owners_of(app, email)["given_name"] == "sso"
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        summary = ldap_sync.run_locked(directory)
    assert summary.errors == 0
    synced = account_of(app, email)
    assert owners_of(app, email)["given_name"] == "ldap"
    assert synced.given_name != "Fed"

    again = app.test_client()
    renamed = {**okta, "given_name": "Mallory", "family_name": "Evil"}
    assert sso(app, again, upstream, cid, "okta-11", renamed).status_code == 303
    after = account_of(app, email)
    assert (after.given_name, after.family_name) == (synced.given_name, synced.family_name)
    assert owners_of(app, email)["family_name"] == "ldap"


# --- the just-in-time gate ---------------------------------------------------------


def test_a_lapsed_domain_stops_just_in_time_creation_in_the_service(
    app: Flask, dns_server: DnsServer
) -> None:
    """The federation service itself (not only its HTTP route) refuses to create an
    account for an address whose domain is still ``verified`` but whose validity
    window ended (:func:`idp.domains.registry.is_effective`), and creates it once the domain
    is checked again."""
    unit = make_unit(app, "acme")
    with app.app_context():
        row = domains.claim("acme", "acme.example")
        dns_server.set_txt(domains.challenge_name(row.name), row.challenge)
        long_ago = datetime.now(UTC) - timedelta(days=settings().domain_validity_days + 1)
        assert domains.check_one(row, now=long_ago).state == "verified"
        lapsed = domains.get("acme.example")
        assert lapsed is not None and lapsed.state == "verified"
        assert not domains.is_effective(lapsed)
        cid = connectors_repo.new_connector_id()
        connectors_repo.create(unit, "okta", "Okta", {"issuer": "https://okta.invalid"},
                               None, connector_id=cid)
        connector = connectors_repo.get(cid)
        assert connector is not None
        who = Asserted("https://okta.invalid", "s-1", {"email": "new@acme.example"},
                       email="new@acme.example", email_verified=True)
        assert federation.resolve(connector, who).refused == "email_domain_not_verified"
        assert accounts.by_email("new@acme.example") is None
        domains.check("acme.example")  # checked again now: in force
        made = federation.resolve(connector, who).account
        assert made is not None and made.email == "new@acme.example"


# --- each operation's audit event --------------------------------------------------


def test_wallet_operations_are_audited_as_the_employee(app: Flask) -> None:
    with app.app_context():
        made = accounts.create_wallet(
            "eve@open.example", {"given_name": "Eve", "family_name": "E"}, "en")
        # no unit: the unit field has no access to live on and is not written
        accounts.update_wallet(made, {"given_name": "Eva", "extra": {"ship_to": "Dock 1"}})
        accounts.employee_update(made.id, {"phone_number": "+49 30 1"},
                                 audit.account_actor(made.id))
        account_id = made.id
    assert actions(app, account_id) == [
        ("account", "account.create"),
        ("account", "account.profile"),
        ("account", "account.profile_edited"),
    ]
    profile = [e for e in events(app, account_id) if e["action"] == "account.profile"]
    assert profile[0]["details"] == {"fields": ["given_name"]}


def test_operator_levers_are_audited_as_the_operator(
    app: Flask, runner: FlaskCliRunner
) -> None:
    with app.app_context():
        account_id = accounts.create_wallet(
            "bob@open.example", {"given_name": "Bob", "family_name": "B"}, None).id
    for action in ("block", "unblock", "unlock"):
        result = runner.invoke(main, ["accounts", action, "bob@open.example", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["done"] is True
    assert actions(app, account_id)[1:] == [
        ("operator", "account.block"),
        ("operator", "account.unblock"),
        ("operator", "account.unlock"),
    ]
    blocked = next(e for e in events(app, account_id) if e["action"] == "account.block")
    assert set(blocked["details"]) == {"sessions_ended", "grants_revoked"}
    assert blocked["actor"]["display"] == f"cli:{getpass.getuser()}"
    assert account_of(app, "bob@open.example").status == accounts.Status.ACTIVE


def test_scim_status_operations_are_audited_as_the_token(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    unit = make_unit(app, "acme", verified=("acme.example",))
    hr = Scim(client, create_token(runner, "acme", name="HR"))
    user = body(hr.post("/Users", {"schemas": [USER], "userName": "ann@acme.example",
                                   "name": {"givenName": "Ann", "familyName": "A"}}), 201)
    uid = user["id"]
    for active in (False, True):
        body(hr.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": active}), 200)
        status = account_of(app, "ann@acme.example").status
        assert status == (accounts.Status.ACTIVE if active else accounts.Status.DEACTIVATED)
    assert hr.delete(f"/Users/{uid}").status_code == 204
    found = events(app, uid)
    assert [(e["actor"]["kind"], e["action"]) for e in found] == [
        ("scim", "account.provisioned"),
        ("scim", "account.deactivated"),
        ("scim", "account.reactivated"),
        ("scim", "account.deprovisioned"),
    ]
    assert all(e["unit_id"] == unit for e in found)
    assert {e["actor"]["display"] for e in found} == {"scim:HR"}
    with app.app_context():
        gone = accounts.get(uid)
        assert gone is not None and gone.status == accounts.Status.DELETED
        assert gone.given_name == "" and gone.field_owners == {}


def test_provisioning_never_lifts_the_operators_block(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    """An account the operator blocked stays blocked when HR's SCIM client adopts it
    as active or sets it active: only ``idp accounts unblock`` lifts a block."""
    make_unit(app, "acme", verified=("acme.example",))
    with app.app_context():
        own = accounts.create_wallet(
            "bob@acme.example", {"given_name": "Bob", "family_name": "B"}, None)
    assert runner.invoke(main, ["accounts", "block", "bob@acme.example"]).exit_code == 0
    hr = Scim(client, create_token(runner, "acme"))
    made = body(hr.post("/Users", {"schemas": [USER], "userName": "bob@acme.example",
                                   "active": True}), 201)
    assert made["id"] == own.id and made["active"] is False
    assert account_of(app, "bob@acme.example").status == accounts.Status.BLOCKED
    body(hr.patch(f"/Users/{own.id}", {"op": "replace", "path": "active", "value": True}), 200)
    assert account_of(app, "bob@acme.example").status == accounts.Status.BLOCKED
    assert runner.invoke(main, ["accounts", "unblock", "bob@acme.example"]).exit_code == 0
    assert account_of(app, "bob@acme.example").status == accounts.Status.ACTIVE
