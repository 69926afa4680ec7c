"""Issue 10, findings 1 and 2: a unit's SCIM client reaches only what it owns.

1. Takeover by adoption: a self-registered person's address provisioned by another
   unit gives a *pending* record on a placeholder, never their account: not read, not
   renamed, not deleted, and signing in with a renamed address is someone else.
2. Domain squatting: an address in a domain another company verified is refused, at
   creation and at rename.

And the way a pending record meets its holder: the holder proves the mailbox and
joins on the dashboard; the record keeps its SCIM id, the HR system manages the
person's own account from then on, and deleting the record only detaches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from idp.accounts import accesses
from idp.accounts import lifecycle as accounts
from idp.domains import registry as domains
from idp.mail.outbox import courier
from idp.store.db import db
from idp.store.models import Access, Account, Unit
from idp.units import registry as units
from tests.support import oidc
from tests.support.login import csrf_token, sign_in_to_dashboard
from tests.support.scim import ERROR, USER, Scim, body, create_token, make_unit

VICTIM = "someone@example.com"


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    yield client
    courier(app).drain()


def verify_domain(app: Flask, unit_slug: str, name: str) -> None:
    """``unit_slug`` claims ``name`` and an operator verifies it by hand."""
    with app.app_context():
        domains.claim(unit_slug, name)
        domains.verify_manually(name, "security test fixture", "test")


def scim_for(app: Flask, web: FlaskClient, runner: FlaskCliRunner, slug: str) -> Scim:
    make_unit(app, slug)
    return Scim(web, create_token(runner, slug))


def self_registered(app: Flask, email: str = VICTIM) -> str:
    """A person who signed up on their own (personal data only: employer facts are
    per access)."""
    return oidc.make_account(
        app, email, given_name="Vera", family_name="Victim", locale="de",
    )


def account_row(app: Flask, account_id: str) -> Account | None:
    with app.app_context():
        return db.session.get(Account, account_id)


def unit_slugs(app: Flask, account_id: str) -> set[str]:
    """The units the account's granting accesses give (``idp.accounts.lifecycle.accesses``)."""
    with app.app_context():
        return {a.unit.slug for a in accounts.accesses(account_id)}


def beta_id(app: Flask) -> str:
    with app.app_context():
        return str(db.session.scalars(select(Unit.id).where(Unit.slug == "beta")).one())


def replace(path: str | None, value: Any) -> dict[str, Any]:
    """A PATCH ``replace`` operation."""
    op: dict[str, Any] = {"op": "replace", "value": value}
    if path is not None:
        op["path"] = path
    return op


def new_user(email: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": email,
            "emails": [{"value": email, "primary": True}], **extra}  # fmt: skip


def test_another_units_scim_never_adopts_a_self_registered_account(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    victim = self_registered(app)
    oidc.make_unit(app, victim, "Victim Own", facts={"cost_centre": "CC-VICTIM",
                                                     "personnel_number": "P-77"})
    beta = scim_for(app, web, runner, "beta")
    created = body(beta.post("/Users", {"schemas": [USER], "userName": VICTIM}), 201)

    assert created["id"] != victim
    assert created["userName"] == VICTIM and created["emails"][0]["value"] == VICTIM
    text = str(created)
    for private in ("Vera", "Victim", "CC-VICTIM", "P-77", "'de'"):
        assert private not in text, f"the victim's {private} leaked into SCIM"
    row = account_row(app, victim)
    assert row is not None and row.email == VICTIM and row.status == "active"
    assert unit_slugs(app, victim) == {"victim-own"}
    # The victim's id is not Beta's to read, change or delete.
    assert beta.get(f"/Users/{victim}").status_code == 404
    rename = replace("userName", "x@attacker.example")
    assert beta.patch(f"/Users/{victim}", rename).status_code == 404
    assert beta.delete(f"/Users/{victim}").status_code == 404


def test_renaming_a_pending_record_moves_nobody_into_the_victims_account(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    victim = self_registered(app)
    beta = scim_for(app, web, runner, "beta")
    uid = body(beta.post("/Users", {"schemas": [USER], "userName": VICTIM}), 201)["id"]
    resp = beta.patch(f"/Users/{uid}", replace(None, {
        "userName": "mallory@attacker.example",
        "emails": [{"value": "mallory@attacker.example"}]}))
    assert resp.status_code in (200, 204), resp.get_data(as_text=True)
    row = account_row(app, victim)
    assert row is not None and row.email == VICTIM and row.given_name == "Vera"
    # Signing in with the attacker's address is a different person, not the victim.
    oidc.make_account(app, "mallory@attacker.example", given_name="Mallory")
    attacker = sign_in_to_dashboard(app, web, "mallory@attacker.example")
    assert "Vera" not in attacker.get_data(as_text=True)
    with app.app_context():
        mallory = accounts.by_email("mallory@attacker.example")
        assert mallory is not None and mallory.id != victim
    # Deleting the pending record leaves the victim alone.
    assert beta.delete(f"/Users/{uid}").status_code == 204
    row = account_row(app, victim)
    assert row is not None and row.status == "active" and row.email == VICTIM


def test_an_address_in_a_domain_another_company_verified_is_refused(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    with app.app_context():
        units.create("Acme Demo GmbH", slug="acme")
    verify_domain(app, "acme", "acme-demo.example")
    beta = scim_for(app, web, runner, "beta")
    resp = beta.post("/Users", new_user("new.person@acme-demo.example"))
    doc = body(resp, 400)
    assert doc["schemas"] == [ERROR] and doc["scimType"] == "invalidValue"
    assert "another company" in doc["detail"]
    with app.app_context():
        assert accounts.by_email("new.person@acme-demo.example") is None


def test_a_record_cannot_be_renamed_into_another_companys_domain(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    with app.app_context():
        units.create("Acme Demo GmbH", slug="acme")
    verify_domain(app, "acme", "acme-demo.example")
    beta = scim_for(app, web, runner, "beta")
    verify_domain(app, "beta", "beta.example")
    bound = body(beta.post("/Users", new_user("bob@beta.example")), 201)["id"]
    pending = body(beta.post("/Users", new_user("carl@gmail.example")), 201)["id"]
    for uid in (bound, pending):
        resp = beta.patch(f"/Users/{uid}",
                          replace("emails", [{"value": "ceo@acme-demo.example"}]))
        assert body(resp, 400)["scimType"] == "invalidValue"
    assert body(beta.get(f"/Users/{bound}"), 200)["emails"][0]["value"] == "bob@beta.example"
    with app.app_context():
        assert accounts.by_email("ceo@acme-demo.example") is None


def test_a_bound_account_is_renamed_only_within_the_units_own_domains(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    beta = scim_for(app, web, runner, "beta")
    verify_domain(app, "beta", "beta.example")
    verify_domain(app, "beta", "beta-new.example")
    uid = body(beta.post("/Users", new_user("bob@beta.example")), 201)["id"]
    row = account_row(app, uid)
    assert row is not None and row.email == "bob@beta.example"  # bound at once
    rename = {"op": "replace", "path": "emails", "value": [{"value": "bob@beta-new.example"}]}
    assert beta.patch(f"/Users/{uid}", rename).status_code in (200, 204)
    row = account_row(app, uid)
    assert row is not None and row.email == "bob@beta-new.example"
    outside = {"op": "replace", "path": "emails", "value": [{"value": "bob@gmail.example"}]}
    assert body(beta.patch(f"/Users/{uid}", outside), 400)["scimType"] == "invalidValue"


def test_own_verified_domain_adopts_a_free_account_but_not_another_units(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    beta = scim_for(app, web, runner, "beta")
    verify_domain(app, "beta", "beta.example")
    own = oidc.make_account(app, "emp@beta.example", phone_number="+1 555")
    adopted = body(beta.post("/Users", new_user("emp@beta.example")), 201)
    assert adopted["id"] == own and adopted["phoneNumbers"][0]["value"] == "+1 555"
    # A person of the same domain who already belongs to another unit stays theirs.
    other = oidc.make_account(app, "pat@beta.example")
    oidc.make_unit(app, other, "Gamma KG")
    assert body(beta.post("/Users", new_user("pat@beta.example")), 409)["scimType"] == (
        "uniqueness"
    )
    assert unit_slugs(app, other) == {"gamma-kg"}


def test_a_lapsed_domain_is_no_longer_the_units_own(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    """A DNS-verified claim older than the validity window stops counting: a new user
    in it becomes a pending record, not an account."""
    from datetime import timedelta

    from idp.store.models import Domain, utcnow

    beta = scim_for(app, web, runner, "beta")
    with app.app_context():
        domains.claim("beta", "beta.example")
        row = db.session.scalars(select(Domain).where(Domain.name == "beta.example")).one()
        row.state, row.verified_method = "verified", "dns"
        row.verified_at = utcnow() - timedelta(days=3650)
        db.session.commit()
    created = body(beta.post("/Users", new_user("old@beta.example")), 201)
    with app.app_context():
        assert accounts.by_email("old@beta.example") is None
    assert created["emails"][0]["value"] == "old@beta.example"


def test_the_holder_joins_a_pending_record_and_it_keeps_its_id(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    victim = self_registered(app)
    beta = scim_for(app, web, runner, "beta")
    group_payload = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                     "displayName": "Buyers"}
    uid = body(beta.post("/Users", new_user(VICTIM, title="Buyer",
                                            name={"givenName": "Vera B."})), 201)["id"]
    gid = body(beta.post("/Groups", {**group_payload, "members": [{"value": uid}]}), 201)["id"]

    page = sign_in_to_dashboard(app, web, VICTIM).get_data(as_text=True)
    assert "Beta" in page and f"/account/invitations/{uid}/join" in page
    assert unit_slugs(app, victim) == set()  # nothing before the click

    resp = web.post(f"/account/invitations/{uid}/join",
                    data={"csrf_token": csrf_token(page)})
    assert resp.status_code == 303
    assert unit_slugs(app, victim) == {"beta"}
    row = account_row(app, victim)
    assert row is not None and row.given_name == "Vera B." and row.email == VICTIM
    assert row.field_owners.get("given_name") == "scim"

    # The HR system keeps its id; it now manages the person's own account.
    doc = body(beta.get(f"/Users/{uid}"), 200)
    assert doc["id"] == uid and doc["emails"][0]["value"] == VICTIM
    members = body(beta.get(f"/Groups/{gid}"), 200)["members"]
    assert [m["value"] for m in members] == [uid]
    found = body(beta.get("/Users", query_string={"filter": f'id eq "{uid}"'}), 200)
    assert found["totalResults"] == 1
    by_member = body(beta.get("/Groups", query_string={"filter": f'members.value eq "{uid}"'}),
                     200)
    assert by_member["totalResults"] == 1
    patch = {"op": "replace", "path": "name.familyName", "value": "Buyer"}
    assert beta.patch(f"/Users/{uid}", patch).status_code in (200, 204)
    row = account_row(app, victim)
    assert row is not None and row.family_name == "Buyer"
    # Removing someone from a group by the SCIM id works after the join too.
    remove = {"op": "remove", "path": f'members[value eq "{uid}"]'}
    assert beta.patch(f"/Groups/{gid}", remove).status_code in (200, 204)
    assert body(beta.get(f"/Groups/{gid}"), 200).get("members", []) == []

    # Deleting the record detaches the person; their account stays theirs.
    assert beta.delete(f"/Users/{uid}").status_code == 204
    row = account_row(app, victim)
    assert row is not None and row.status == "active" and row.email == VICTIM
    assert row.family_name == "" and "family_name" not in row.field_owners
    assert unit_slugs(app, victim) == set()
    assert beta.get(f"/Users/{uid}").status_code == 404


def test_joining_needs_the_mailbox_proven_and_the_record_still_pending(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    self_registered(app)
    beta = scim_for(app, web, runner, "beta")
    uid = body(beta.post("/Users", new_user(VICTIM)), 201)["id"]
    # Someone else's session cannot join it: the record is offered only to its address.
    oidc.make_account(app, "other@example.com")
    page = sign_in_to_dashboard(app, web, "other@example.com").get_data(as_text=True)
    assert "/invitations/" not in page
    web.post(f"/account/invitations/{uid}/join", data={"csrf_token": csrf_token(page)})
    assert body(beta.get(f"/Users/{uid}"), 200)["emails"][0]["value"] == VICTIM
    with app.app_context():
        other = accounts.by_email("other@example.com")
        assert other is not None
    assert unit_slugs(app, other.id) == set()
    # A deactivated record is not offered.
    deactivate = {"op": "replace", "path": "active", "value": False}
    assert beta.patch(f"/Users/{uid}", deactivate).status_code in (200, 204)
    fresh = app.test_client()
    page = sign_in_to_dashboard(app, fresh, VICTIM).get_data(as_text=True)
    assert "/invitations/" not in page
    # Without the CSRF token nothing happens.
    assert beta.patch(f"/Users/{uid}", replace("active", True)).status_code in (200, 204)
    resp = fresh.post(f"/account/invitations/{uid}/join", data={})
    assert resp.status_code == 400
    with app.app_context():
        vera = accounts.by_email(VICTIM)
        assert vera is not None
    assert unit_slugs(app, vera.id) == set()


def test_the_placeholder_domain_cannot_be_claimed(app: Flask) -> None:
    """Placeholders and deleted accounts have ``.invalid`` addresses: no company may
    claim that domain (it could otherwise provision into those accounts)."""
    with app.app_context():
        units.create("Sly GmbH", slug="sly")
        for name in ("pending.invalid", "deleted.invalid", "*.invalid.invalid"):
            with pytest.raises(domains.DomainError) as refused:
                domains.claim("sly", name)
            assert refused.value.code == "reserved_domain"


def test_strangers_and_other_units_cannot_reach_a_pending_record(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    """Another company's SCIM token gets 404 for a pending record's id; a browser
    without a session cannot join it."""
    victim = self_registered(app)
    beta = scim_for(app, web, runner, "beta")
    gamma = scim_for(app, web, runner, "gamma")
    uid = body(beta.post("/Users", new_user(VICTIM)), 201)["id"]
    assert gamma.get(f"/Users/{uid}").status_code == 404
    assert gamma.delete(f"/Users/{uid}").status_code == 404
    found = body(gamma.get("/Users", query_string={"filter": f'emails.value eq "{VICTIM}"'}), 200)
    assert found["totalResults"] == 0
    stranger = app.test_client()
    resp = stranger.post(f"/account/invitations/{uid}/join", data={})
    assert resp.status_code in (303, 400)
    assert unit_slugs(app, victim) == set()
    assert body(beta.get(f"/Users/{uid}"), 200)["emails"][0]["value"] == VICTIM


def joined_record(app: Flask, web: FlaskClient, beta: Scim, email: str = VICTIM) -> str:
    """A pending record of ``email`` at Beta that its holder joined; its SCIM id."""
    uid = body(beta.post("/Users", new_user(email, title="Buyer")), 201)["id"]
    page = sign_in_to_dashboard(app, web, email).get_data(as_text=True)
    resp = web.post(f"/account/invitations/{uid}/join", data={"csrf_token": csrf_token(page)})
    assert resp.status_code == 303
    return uid


def test_a_joined_persons_address_is_theirs_not_the_units(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    """After the join the unit manages its record, never the person's address: not
    even into a domain the unit verified later (it would own their mailbox then)."""
    victim = self_registered(app)
    beta = scim_for(app, web, runner, "beta")
    uid = joined_record(app, web, beta)
    verify_domain(app, "beta", "beta.example")
    resp = beta.patch(f"/Users/{uid}", replace("emails", [{"value": "vera@beta.example"}]))
    assert body(resp, 400)["scimType"] == "invalidValue"
    row = account_row(app, victim)
    assert row is not None and row.email == VICTIM


def test_deactivating_a_joined_record_suspends_only_that_units_access(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    victim = self_registered(app)
    oidc.make_unit(app, victim, "Gamma KG", roles=["buyer"])
    beta = scim_for(app, web, runner, "beta")
    uid = joined_record(app, web, beta)
    assert unit_slugs(app, victim) == {"beta", "gamma-kg"}

    assert beta.patch(f"/Users/{uid}", replace("active", False)).status_code in (200, 204)
    assert body(beta.get(f"/Users/{uid}"), 200)["active"] is False
    found = body(beta.get("/Users?filter=active eq false"), 200)["Resources"]
    assert [r["id"] for r in found] == [uid]  # the filter agrees with the record
    row = account_row(app, victim)
    assert row is not None and row.status == "active" and row.can_sign_in
    assert unit_slugs(app, victim) == {"gamma-kg"}
    with app.app_context():  # suspended, its roles kept on it
        access = accesses.find(victim, beta_id(app))
        assert access is not None and (access.status, access.roles) == ("suspended", ["employee"])
    assert web.get("/account").status_code == 200  # their session lives on

    assert beta.patch(f"/Users/{uid}", replace("active", True)).status_code in (200, 204)
    assert body(beta.get(f"/Users/{uid}"), 200)["active"] is True
    assert unit_slugs(app, victim) == {"beta", "gamma-kg"}
    with app.app_context():
        roles = db.session.scalars(select(Access.roles).join(Unit).where(
            Access.account_id == victim, Unit.slug == "beta")).one()  # fmt: skip
    assert roles == ["employee"]


def test_a_join_never_overwrites_hrs_newer_change(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HR deactivates the record while the person is joining: the join is refused and
    the deactivation stands."""
    import threading

    from idp.accounts import invitations

    victim = self_registered(app)
    beta = scim_for(app, web, runner, "beta")
    uid = body(beta.post("/Users", new_user(VICTIM)), 201)["id"]
    page = sign_in_to_dashboard(app, web, VICTIM).get_data(as_text=True)
    hr = Scim(app.test_client(), beta.token)
    original = invitations._take_values

    def hr_acts_meanwhile(placeholder: Account, account: Account, unit_id: str) -> None:
        # after the join read the record's version, before it writes anything (the
        # values it takes include moving the access, which writes at once)
        answers: list[int] = []
        thread = threading.Thread(target=lambda: answers.append(
            hr.patch(f"/Users/{uid}", replace("active", False)).status_code))  # fmt: skip
        thread.start()
        thread.join(timeout=30)
        assert answers and answers[0] in (200, 204)
        original(placeholder, account, unit_id)

    monkeypatch.setattr(invitations, "_take_values", hr_acts_meanwhile)
    web.post(f"/account/invitations/{uid}/join", data={"csrf_token": csrf_token(page)})
    assert unit_slugs(app, victim) == set()
    doc = body(beta.get(f"/Users/{uid}"), 200)
    assert doc["active"] is False and doc["emails"][0]["value"] == VICTIM


def test_a_domain_verified_by_another_company_meanwhile_stops_the_join(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    beta = scim_for(app, web, runner, "beta")
    oidc.make_account(app, "pat@acme-demo.example")
    uid = body(beta.post("/Users", new_user("pat@acme-demo.example")), 201)["id"]
    page = sign_in_to_dashboard(app, web, "pat@acme-demo.example").get_data(as_text=True)
    with app.app_context():
        units.create("Acme Demo GmbH", slug="acme")
    verify_domain(app, "acme", "acme-demo.example")
    web.post(f"/account/invitations/{uid}/join", data={"csrf_token": csrf_token(page)})
    with app.app_context():
        pat = accounts.by_email("pat@acme-demo.example")
        assert pat is not None
    assert "beta" not in unit_slugs(app, pat.id)


def test_only_an_email_code_session_proves_the_mailbox() -> None:
    from idp.dashboard.views import proved_mailbox

    assert proved_mailbox(["otp"]) and proved_mailbox(["otp", "mfa"])
    for amr in (["fed"], ["pwd"], ["fed", "otp", "mfa"], ["pwd", "otp", "mfa"], []):
        assert not proved_mailbox(amr), amr
