"""Issue 10, LDAP sync and federation's just-in-time creation: a unit's provisioning
reaches only what lies in a domain it verified and that is still in force
(SECURITY.md, SCIM: "A unit's provisioning (SCIM, LDAP, SSO just-in-time) owns only
what it created or what lies in a domain it verified ..."; the rules are
:mod:`idp.provisioning.ownership`'s).

LDAP against the real slapd of ``tests/support/slapd.py`` (every user's address is
``userNNNNN@acme.example``); federation through the app against the real upstream
OpenID provider of ``tests/upstream``; lapsed domains with a DNS-verified claim whose
last successful check is older than ``IDP_DOMAIN_VALIDITY_DAYS`` (the real test DNS
server of ``tests/support/dns.py``, the check dated by ``domains.check_one(now=...)``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from idp.accounts import accesses
from idp.domains import registry as domains
from idp.ldap import directories as ldap_directories
from idp.ldap import sync as ldap_sync
from idp.services import settings
from idp.store import ldap_repo
from idp.store.db import db
from idp.store.models import Access, Account, LdapLink, UpstreamIdentity
from idp.units import registry as units
from tests.support import slapd as ldap_test
from tests.support.dns import DnsServer
from tests.support.ldap_fixtures import USERS, directory_settings, verify_domain
from tests.support.upstream import Upstream
from tests.test_federation_flow import GOOGLE, make_connector, sso

ENABLED = USERS - USERS // 100  # every 100th user is disabled in the directory
FOREIGN = "lies in a domain another company verified"
NOT_OWN = "is not in a domain this unit verified"


@pytest.fixture
def settings_overrides(dns_server: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 0.5}


# --- helpers -----------------------------------------------------------------------


def company(slug: str, *verified: str, parent: str | None = None) -> str:
    """A unit (with the roles the directory's group map gives) that verified
    ``verified`` by hand; inside an app context."""
    unit = units.create(slug.title(), parent=parent, slug=slug,
                        permission_groups=["buyer", "approver"])
    for name in verified:
        verify_domain(unit.id, name)
    return unit.id


def lapsed_dns_claim(dns_server: DnsServer, slug: str, name: str) -> None:
    """``name`` claimed by ``slug`` and verified by DNS, but last checked longer ago
    than the validity window: state ``verified``, no longer in force."""
    row = domains.claim(slug, name)
    dns_server.set_txt(domains.challenge_name(row.name), row.challenge)
    validity = timedelta(days=settings().domain_validity_days)
    long_ago = datetime.now(UTC) - validity - timedelta(days=1)
    assert domains.check_one(row, now=long_ago).state == "verified"
    row = domains.get(name)
    assert row.verified_method == "dns" and not domains.is_effective(row)


def join(account_id: str, unit_id: str) -> None:
    """A membership given by an administrator."""
    accesses.join(account_id, unit_id, ["employee"], "admin:test", "membership.add",
                  {"unit_id": unit_id})


def self_registered(email: str, given_name: str = "Self") -> Account:
    """An account someone opened themselves with an e-mail code (not provisioned)."""
    from idp.accounts import lifecycle as accounts

    return accounts.create_wallet(email, {"given_name": given_name, "family_name": "Made"}, None)


def sync(app: Flask, directory_id: str) -> ldap_sync.SyncSummary:
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        return ldap_sync.run_locked(directory)


def by_email(email: str) -> Account | None:
    return db.session.scalars(select(Account).where(Account.email == email)).first()


def user_email(n: int) -> str:
    return f"{ldap_test.uid(n)}@{ldap_test.MAIL_DOMAIN}"


def count(model: type) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


# --- LDAP sync ---------------------------------------------------------------------


def test_ldap_creates_nothing_in_a_domain_another_unit_verified(
    app: Flask, unit_id: str, directory_server: ldap_test.Slapd
) -> None:
    """The domain-squatting probe: Beta's directory holds addresses of acme.example,
    which Acme verified. Beta's sync provisions none of them."""
    with app.app_context():
        beta = company("beta", "beta.example")
        directory = ldap_directories.create("beta", directory_settings(directory_server))  # type: ignore[arg-type]
    summary = sync(app, directory.id)
    assert summary.created == 0 and summary.updated == 0
    assert summary.errors == ENABLED
    sample = re.compile(rf"cn=user\d+,{ldap_test.PEOPLE}: user\d+@acme\.example {FOREIGN}; "
                        "not provisioned")
    assert summary.error_samples and all(sample.fullmatch(s) for s in summary.error_samples)
    with app.app_context():
        assert count(Account) == 0 and count(LdapLink) == 0
        assert db.session.scalars(select(Access).where(Access.unit_id == beta)).all() == []


def test_ldap_does_not_adopt_a_self_registered_account_outside_its_verified_domains(
    app: Flask, directory_id: str, unit_id: str, directory_server: ldap_test.Slapd
) -> None:
    """A self-registered address in a domain nobody verified is not adopted, even when
    its holder is a member of the unit; the rest of the directory syncs."""
    directory_server.replace(11, "mail", ["mallory@freemail.example"])
    with app.app_context():
        own = self_registered("mallory@freemail.example", "Mallory")
        join(own.id, unit_id)
    summary = sync(app, directory_id)
    assert summary.errors == 1
    assert summary.error_samples == [
        f"{ldap_test.user_dn(11)}: mallory@freemail.example {NOT_OWN}; "
        "verify the domain to provision it"
    ]
    assert summary.created == ENABLED - 1 and summary.updated == 0
    with app.app_context():
        a = by_email("mallory@freemail.example")
        assert a is not None and a.given_name == "Mallory" and not a.field_owners
        assert db.session.scalars(select(LdapLink).where(LdapLink.account_id == a.id)).all() == []


def test_ldap_does_not_adopt_an_account_another_unit_also_reaches(
    app: Flask, directory_id: str, unit_id: str
) -> None:
    """Even in the unit's own domain, an account that is a member of another unit too
    is not taken over (idp.provisioning.ownership.bindable), on top of the old rule that it must
    already be a member of this unit."""
    with app.app_context():
        other = company("other")
        shared = self_registered(user_email(12), "Shared")
        join(shared.id, unit_id)
        join(shared.id, other)
    summary = sync(app, directory_id)
    assert summary.errors == 1
    assert "another unit also reaches; not adopted" in summary.error_samples[0]
    with app.app_context():
        a = by_email(user_email(12))
        assert a is not None and a.given_name == "Shared"
        assert db.session.scalars(select(LdapLink).where(LdapLink.account_id == a.id)).all() == []


def test_ldap_rename_out_of_the_units_domains_is_refused_and_the_rest_applies(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    """A known entry's new address in another company's domain, or in a domain nobody
    verified: the account keeps its address, the error is counted, the other changed
    fields are still applied, run after run."""
    with app.app_context():
        company("globex", "globex.example")
    assert sync(app, directory_id).created == ENABLED
    with app.app_context():
        five, six = by_email(user_email(5)), by_email(user_email(6))
        assert five is not None and six is not None
        ids = five.id, six.id
    directory_server.replace(5, "mail", ["ceo@globex.example"])
    directory_server.replace(5, "sn", ["Neumann"])
    directory_server.replace(6, "mail", ["anna@unclaimed.example"])
    for _run in range(2):
        summary = sync(app, directory_id)
        assert summary.errors == 2
        assert summary.updated == (1 if _run == 0 else 0)
        assert sorted(summary.error_samples) == sorted([
            f"{ldap_test.user_dn(5)}: new address ceo@globex.example {FOREIGN}; "
            "address not changed",
            f"{ldap_test.user_dn(6)}: new address anna@unclaimed.example {NOT_OWN}; "
            "address not changed",
        ])
    with app.app_context():
        five, six = db.session.get(Account, ids[0]), db.session.get(Account, ids[1])
        assert five is not None and six is not None
        assert (five.email, five.family_name) == (user_email(5), "Neumann")
        assert six.email == user_email(6)
        assert by_email("ceo@globex.example") is None


def test_ldap_in_its_own_verified_domain_still_creates_and_renames(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    summary = sync(app, directory_id)
    assert (summary.created, summary.errors) == (ENABLED, 0)
    with app.app_context():
        five = by_email(user_email(5))
        assert five is not None
        five_id = five.id
    directory_server.replace(5, "mail", ["anna.neumann@acme.example"])
    summary = sync(app, directory_id)
    assert (summary.updated, summary.errors) == (1, 0)
    with app.app_context():
        five = db.session.get(Account, five_id)
        assert five is not None and five.email == "anna.neumann@acme.example"


def test_ldap_of_a_sub_unit_provisions_in_its_parent_companys_domain(
    app: Flask, unit_id: str, directory_server: ldap_test.Slapd
) -> None:
    with app.app_context():
        sales = company("sales", parent="acme")
        directory = ldap_directories.create("sales", directory_settings(directory_server))  # type: ignore[arg-type]
    summary = sync(app, directory.id)
    assert (summary.created, summary.errors) == (ENABLED, 0)
    with app.app_context():
        a = by_email(user_email(3))
        assert a is not None
        units_of = db.session.scalars(
            select(Access.unit_id).where(Access.account_id == a.id)).all()
        assert units_of == [sales]


def test_ldap_password_login_keeps_working_for_linked_accounts(
    app: Flask, directory_id: str
) -> None:
    from idp.login import ldap_bind as login_ldap

    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        directory.login_enabled = True
        db.session.commit()
    sync(app, directory_id)
    with app.app_context():
        a = by_email(user_email(2))
        assert a is not None
        assert login_ldap.verify_password(a, ldap_test.password_of(2))


# --- federation: just-in-time creation ---------------------------------------------


OKTA_NEW = {"email": "new.person@acme.example", "email_verified": True,
            "given_name": "New", "family_name": "Person"}


def okta(app: Flask, upstream: Upstream, unit_id: str) -> str:
    return make_connector(app, upstream, unit_id, "okta", {"issuer": upstream.okta_custom_issuer})


def test_a_lapsed_domain_stops_just_in_time_creation(
    app: Flask, client: FlaskClient, upstream: Upstream, dns_server: DnsServer
) -> None:
    with app.app_context():
        acme = company("acme")
        lapsed_dns_claim(dns_server, "acme", "acme.example")
    cid = okta(app, upstream, acme)
    assert sso(app, client, upstream, cid, "okta-new", OKTA_NEW).status_code == 403
    with app.app_context():
        assert count(Account) == 0 and count(UpstreamIdentity) == 0
        assert domains.check("acme.example")[0].state == "verified"  # checked again now
    assert sso(app, client, upstream, cid, "okta-new", OKTA_NEW).status_code == 303
    with app.app_context():
        assert by_email("new.person@acme.example") is not None


def test_a_lapsed_google_hosted_domain_is_refused(
    app: Flask, client: FlaskClient, upstream: Upstream, dns_server: DnsServer
) -> None:
    with app.app_context():
        acme = company("acme")
        lapsed_dns_claim(dns_server, "acme", "acme.example")
    cid = make_connector(app, upstream, acme, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"]})
    assert sso(app, client, upstream, cid, "g-alice", GOOGLE).status_code == 403
    with app.app_context():
        assert count(Account) == 0


def test_known_identity_still_signs_in_after_its_domain_lapsed(
    app: Flask, client: FlaskClient, upstream: Upstream, dns_server: DnsServer
) -> None:
    with app.app_context():
        acme = company("acme")
        row = domains.claim("acme", "acme.example")
        dns_server.set_txt(domains.challenge_name(row.name), row.challenge)
        assert domains.check("acme.example")[0].state == "verified"
    cid = okta(app, upstream, acme)
    assert sso(app, client, upstream, cid, "okta-new", OKTA_NEW).status_code == 303
    with app.app_context():
        lapsed_dns_claim(dns_server, "acme", "acme.example")
    again = app.test_client()
    assert sso(app, again, upstream, cid, "okta-new", OKTA_NEW).status_code == 303
    with app.app_context():
        assert count(Account) == 1


def test_just_in_time_creation_for_another_companys_domain_is_refused(
    app: Flask, client: FlaskClient, upstream: Upstream
) -> None:
    """Beta's IdP asserts an address of acme.example, which Acme verified."""
    with app.app_context():
        company("acme", "acme.example")
        beta = company("beta", "beta.example")
    cid = okta(app, upstream, beta)
    assert sso(app, client, upstream, cid, "okta-squat", OKTA_NEW).status_code == 403
    with app.app_context():
        assert count(Account) == 0 and count(UpstreamIdentity) == 0


def test_a_sub_units_connector_creates_in_its_parent_companys_domain(
    app: Flask, client: FlaskClient, upstream: Upstream
) -> None:
    with app.app_context():
        company("acme", "acme.example")
        sales = company("sales", parent="acme")
    cid = okta(app, upstream, sales)
    assert sso(app, client, upstream, cid, "okta-new", OKTA_NEW).status_code == 303
    with app.app_context():
        a = by_email("new.person@acme.example")
        assert a is not None
        units_of = db.session.scalars(
            select(Access.unit_id).where(Access.account_id == a.id)).all()
        assert units_of == [sales]


def test_a_sub_units_google_connector_accepts_its_parent_companys_hosted_domain(
    app: Flask, client: FlaskClient, upstream: Upstream
) -> None:
    with app.app_context():
        company("acme", "acme.example")
        sales = company("sales", parent="acme")
    cid = make_connector(app, upstream, sales, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"]})
    assert sso(app, client, upstream, cid, "g-alice", GOOGLE).status_code == 303


def test_an_upstream_never_renames_a_known_account_into_another_companys_domain(
    app: Flask, client: FlaskClient, upstream: Upstream
) -> None:
    with app.app_context():
        company("globex", "globex.example")
        acme = company("acme", "acme.example")
    cid = okta(app, upstream, acme)
    assert sso(app, client, upstream, cid, "okta-new", OKTA_NEW).status_code == 303
    moved = {**OKTA_NEW, "email": "ceo@globex.example", "family_name": "Moved"}
    assert sso(app, app.test_client(), upstream, cid, "okta-new", moved).status_code == 303
    with app.app_context():
        a = by_email("new.person@acme.example")
        assert a is not None and a.family_name == "Moved"
        assert by_email("ceo@globex.example") is None
