"""Security probe of issue 13 (passwords, impersonation, webhooks): each test shows a
hole found by attacking the new code and stays as its regression test."""

from __future__ import annotations

import json

from flask import Flask

from idp.accounts import access_admin, accesses
from idp.cli import main
from idp.factors import passwords
from idp.release import consent, merchants
from idp.rights import Actor
from idp.rights import groups as rights_groups
from idp.store.db import db
from idp.store.models import Account
from idp.store.unit_of_work import atomic
from idp.units import customers
from idp.units import registry as units
from tests.support import oidc
from tests.support.login import CSRF_RE
from tests.test_impersonation import browser, start, world


def _access(app: Flask, account_id: str, unit_id: str, roles: list[str]) -> str:
    with app.app_context(), atomic():
        return accesses.create(account_id, unit_id, roles, "test", event=None).id


# -- a staff reset acts on the whole person, not on one access ------------------------


def test_a_unit_admin_may_not_reset_the_password_of_a_person_stronger_elsewhere(
    app: Flask,
) -> None:
    """The reset replaces the person's one password and ends all their sessions: an
    admin of a small unit (``users.manage`` there) must not do that to a person who,
    through a plain employee access in that unit, is a main user of another company
    or of the parent, or one of the operator's staff."""
    with app.app_context():
        acme = customers.create("company", {"name": "ACME"}).id
        sales = units.create("ACME Sales", parent=acme).id
        globex = customers.create("company", {"name": "Globex"}).id
        rights_groups.set_group(sales, "helpers", ["users.read", "users.manage"])
    result = app.test_cli_runner().invoke(
        main, ["units", "policy", sales, "--passwords-allowed", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["passwords_allowed"] is True
    helper = oidc.make_account(app, "help@acme.example", given_name="Hel")
    _access(app, helper, sales, ["employee", "helpers"])
    boss = oidc.make_account(app, "boss@acme.example", given_name="Boss")
    _access(app, boss, acme, ["main_user"])
    boss_here = _access(app, boss, sales, ["employee"])
    gus = oidc.make_account(app, "gus@globex.example", given_name="Gus")
    _access(app, gus, globex, ["main_user"])
    gus_here = _access(app, gus, sales, ["employee"])
    ann = oidc.make_account(app, "ann@acme.example", given_name="Ann")
    ann_here = _access(app, ann, sales, ["employee"])
    with app.app_context():
        actor = Actor.account(helper)
        for target, access_id in ((boss, boss_here), (gus, gus_here)):
            row = access_admin.get(sales, access_id)
            assert access_admin.act(actor, "reset_password", row).code == "forbidden"
            assert passwords.status(target) is None
        # an ordinary employee of the unit: still resettable
        row = access_admin.get(sales, ann_here)
        assert access_admin.act(actor, "reset_password", row).outcome == "done"
        assert passwords.status(ann) == "reset_by_staff"
        # the main user of the parent company may reset the boss's colleague, and
        # the system (the operator's CLI) anyone
        assert access_admin.act(Actor.account(boss), "reset_password",
                                access_admin.get(sales, gus_here)).code == "forbidden"
        from idp.rights import SYSTEM

        assert access_admin.act(SYSTEM, "reset_password",
                                access_admin.get(sales, boss_here)).outcome == "done"


# -- an acting session never writes the person's own choices ---------------------------


def test_consent_and_profile_given_while_acting_are_not_the_persons_own(app: Flask) -> None:
    """While Carl acts as Ann, the sign-in's consent page lets the sign-in go on,
    but Ann's lasting consent to the merchant is hers to give: it is not stored (her
    next own sign-in asks her). The wallet profile page of the sign-in is read-only
    like the dashboard (a name changed there would be recorded as her own doing)."""
    ids = world(app)
    rp = oidc.register(app, scope="openid profile email")
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    params = oidc.auth_params(rp, code_challenge=oidc.pkce()[1],
                              code_challenge_method="S256")
    resp = web.get("/authorize", query_string=params)
    for _ in range(4):  # the interaction's redirects up to the consent page
        assert resp.status_code == 303, resp.get_data(as_text=True)
        consent_path = resp.headers["Location"].split("?", 1)[0]
        if consent_path.endswith("/consent"):
            break
        resp = web.get(consent_path)
    assert consent_path.endswith("/consent"), consent_path
    page = web.get(consent_path)
    found = CSRF_RE.search(page.get_data(as_text=True))
    assert found is not None
    token = found.group(1)
    ix_path = consent_path.rsplit("/", 1)[0]
    # the profile page of the same sign-in: refused while acting
    hacked = web.post(ix_path + "/profile", data={
        "csrf_token": token, "given_name": "Hacked", "family_name": "Test"})
    assert hacked.status_code == 403, hacked.status_code
    allowed = web.post(consent_path, data={"csrf_token": token, "decision": "allow"})
    assert allowed.status_code == 303
    assert "code=" in allowed.headers["Location"], allowed.headers["Location"]
    with app.app_context():
        merchant = merchants.of_client(rp.client_id)
        assert merchant is not None
        assert consent.granted_scopes(ids["ann"], merchant.id) == set()
        assert db.session.get(Account, ids["ann"]).given_name == "Ann"  # type: ignore[union-attr]


def test_a_step_up_while_acting_never_enrols_an_authenticator_for_the_person(
    app: Flask,
) -> None:
    """A merchant asking for MFA during an impersonation sends the acting browser to
    the TOTP pages. Setting up an authenticator app there would give the actor a
    second factor of the person that outlives the end (the dashboard refuses the same
    set-up while acting): refused."""
    from idp.factors import totp
    from idp.factors.acr import ACR_MFA
    from tests.support.step_up import SECRET_RE

    ids = world(app)
    rp = oidc.register(app, scope="openid profile email")
    oidc.grant_consent(app, ids["ann"], rp.client_id, ["openid", "profile", "email"])
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    params = oidc.auth_params(rp, code_challenge=oidc.pkce()[1],
                              code_challenge_method="S256", acr_values=ACR_MFA)
    resp = web.get("/authorize", query_string=params)
    setup = ""
    for _ in range(4):  # to the TOTP pages of the sign-in
        assert resp.status_code == 303, resp.get_data(as_text=True)
        setup = resp.headers["Location"].split("?", 1)[0]
        if "/totp" in setup:
            break
        resp = web.get(setup)
    assert setup.endswith("/totp") or setup.endswith("/totp/setup"), setup
    assert web.get(setup).status_code == 403
    setup = setup.removesuffix("/setup").removesuffix("/totp") + "/totp/setup"
    page = web.get(setup)
    secret = SECRET_RE.search(page.get_data(as_text=True))
    assert page.status_code == 403 and secret is None, page.status_code
    found = CSRF_RE.search(web.get("/account").get_data(as_text=True))
    assert found is not None
    import pyotp

    posted = web.post(setup, data={"csrf_token": found.group(1),
                                   "code": pyotp.TOTP(pyotp.random_base32()).now()})
    assert posted.status_code == 403
    with app.app_context():
        assert not totp.enrolled(ids["ann"])


def test_introspecting_a_refresh_token_of_an_impersonation_names_the_actor(app: Flask) -> None:
    """RFC 7662 answers for the refresh token too; a refresh token issued while Carl
    acts as Ann is Ann's only with ``act`` naming Carl (as the access token's
    answer does), and inactive after the end."""
    ids = world(app)
    rp = oidc.register(app, scope="openid profile email", grant_types=[
        "authorization_code", "refresh_token"])
    oidc.grant_consent(app, ids["ann"], rp.client_id, ["openid", "profile", "email"])
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    q = oidc.query(web.get("/authorize", query_string=params))
    si = oidc.SignIn(q["code"], params["state"], params["nonce"], verifier, params, q)
    tokens = oidc.exchange(web, rp, si).get_json()
    for token in (tokens["access_token"], tokens["refresh_token"]):
        answer = web.post("/introspect", data={"token": token}, headers=rp.basic()).get_json()
        assert answer["active"] is True and answer["sub"] == ids["ann"], answer
        assert answer.get("act") == {"sub": ids["carl"]}, answer
    web.post("/account/impersonation/end", data={"csrf_token": csrf["X-CSRF-Token"]})
    answer = web.post("/introspect", data={"token": tokens["refresh_token"]},
                      headers=rp.basic()).get_json()
    assert answer == {"active": False}


# -- webhook targets --------------------------------------------------------------------


def test_webhook_targets_judge_6to4_and_site_local_addresses_by_where_they_lead() -> None:
    """A 6to4 address (2002::/16) carries an IPv4 address that a 6to4 router of the
    operator's network delivers to: 2002:a00:1:: is 10.0.0.1 and 2002:7f00:1:: is
    127.0.0.1. Deprecated site-local fec0::/10 addresses are private by definition.
    Python's ``is_global`` calls both public; the webhook check must not."""
    import pytest

    from idp.webhooks import targets

    for url in ("https://[2002:a00:1::]/hook", "https://[2002:7f00:1::]/hook",
                "https://[2002:a9fe:a9fe::]/hook", "https://[fec0::1]/hook"):
        with pytest.raises(targets.TargetRefused) as refused:
            targets.check(url, allow_private=False)
        assert refused.value.code == "private_address", url
    # a 6to4 address of a public IPv4 address stays allowed
    assert targets.is_public("2002:808:808::1")


def test_resending_access_details_does_not_replace_a_stronger_persons_password(
    app: Flask,
) -> None:
    """For an active access in a unit that allows passwords, "resend" mails a new
    generated password in place of a generated one (``initial``, ``reset_by_staff``):
    it acts on the person like a reset, so the same rule holds."""
    with app.app_context():
        acme = customers.create("company", {"name": "ACME"}).id
        sales = units.create("ACME Sales", parent=acme).id
        rights_groups.set_group(sales, "helpers", ["users.read", "users.manage"])
    result = app.test_cli_runner().invoke(
        main, ["units", "policy", sales, "--passwords-allowed", "--json"])
    assert result.exit_code == 0, result.output
    helper = oidc.make_account(app, "help@acme.example", given_name="Hel")
    _access(app, helper, sales, ["employee", "helpers"])
    boss = oidc.make_account(app, "boss@acme.example", given_name="Boss")
    _access(app, boss, acme, ["main_user"])
    boss_here = _access(app, boss, sales, ["employee"])
    ann = oidc.make_account(app, "ann@acme.example", given_name="Ann")
    ann_here = _access(app, ann, sales, ["employee"])
    from idp.rights import SYSTEM
    from idp.store import passwords_repo

    with app.app_context():
        for access_id in (boss_here, ann_here):  # generated passwords for both
            row = access_admin.get(sales, access_id)
            assert access_admin.act(SYSTEM, "reset_password", row).outcome == "done"
        before = passwords_repo.get(boss)
        assert before is not None
        boss_hash = before.hash
        actor = Actor.account(helper)
        row = access_admin.get(sales, boss_here)
        assert access_admin.act(actor, "resend", row).code == "forbidden"
        after = passwords_repo.get(boss)
        assert after is not None and after.hash == boss_hash
        # the bulk action decides per person as well
        bounds = access_admin.scope(actor, "users.manage", sales, False)
        for action in ("resend", "reset_password"):
            done = access_admin.bulk(actor, action, bounds, [boss_here, ann_here], None)
            assert done.counts["done"] == 1, (action, done)
            assert [i["id"] for i in done.items] == [boss_here], (action, done.items)
        after = passwords_repo.get(boss)
        assert after is not None and after.hash == boss_hash


def test_an_acting_sign_in_is_confined_to_the_impersonations_unit(app: Flask) -> None:
    """Ann also has an access without roles at Globex, where Carl holds nothing.
    Acting as her from ACME Sales, a merchant sign-in never offers or takes Globex:
    the unit page is skipped, a posted Globex choice is refused, and the token
    names ACME Sales."""
    ids = world(app)
    globex_access = _access(app, ids["ann"], ids["globex"], [])
    assert globex_access
    rp = oidc.register(app, scope="openid org")
    oidc.grant_consent(app, ids["ann"], rp.client_id, ["openid", "org"])
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256",
                              scope="openid org")
    resp = web.get("/authorize", query_string=params)
    for _ in range(6):  # through the interaction's redirects back to the merchant
        assert resp.status_code in (302, 303), resp.get_data(as_text=True)
        location = resp.headers["Location"]
        assert not location.split("?", 1)[0].endswith("/unit"), location
        if "code=" in location:
            break
        resp = web.get(location.split("?", 1)[0])
    code = oidc.query(resp)["code"]
    tokens = web.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier}, headers=rp.basic()).get_json()
    claims = oidc.verify_jwt(web, tokens["id_token"]).claims
    assert claims["act"]["sub"] == ids["carl"]
    info = oidc.userinfo(web, tokens["access_token"]).get_json()
    assert info.get("org_id") == ids["sales"], info

    # a second sign-in (prompt=consent: through the pages): choosing Globex is refused
    resp = web.get("/authorize", query_string=oidc.auth_params(
        rp, code_challenge=challenge, code_challenge_method="S256", scope="openid org",
        prompt="consent"))
    ix = oidc.interaction_id(resp)
    page = web.get(f"/interaction/{ix}/consent")
    found = CSRF_RE.search(page.get_data(as_text=True))
    token = found.group(1) if found else ""
    refused = web.post(f"/interaction/{ix}/unit",
                       data={"csrf_token": token, "unit_id": ids["globex"]})
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/unit")
