"""Domain rules: auto-join, default role, sub-unit by attribute, require_sso with
break-glass, their precedence in ``explain``, the functions the login flow calls
(``membership_for_email``, ``login_method_for_email``, ``apply_auto_join``), and the
rule "changing an e-mail address never changes membership without verifying it"."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from sqlalchemy import func, select

from idp.accounts import accesses
from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.store import accesses_repo, connectors_repo, units_repo
from idp.store.db import db
from idp.store.models import Access, Account, AuditEvent
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.dns import DnsServer


@pytest.fixture
def settings_overrides(dns_server: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 0.5}


def verify_by_dns(dns_server: DnsServer, name: str) -> None:
    row = domains.get(name)
    dns_server.set_txt(domains.challenge_name(row.name), row.challenge)
    assert domains.check(name)[0].state == "verified"


@pytest.fixture
def acme(app: Flask, dns_server: DnsServer) -> dict[str, str]:
    """ACME with two departments, acme.example verified by DNS, and an SSO connector."""
    with app.app_context():
        acme = units.create("ACME", slug="acme", permission_groups=["buyers"])
        sales = units.create("ACME Sales", parent="acme", slug="acme-sales")
        units.create("Outsider", slug="outsider")
        domains.claim("acme", "acme.example")
        verify_by_dns(dns_server, "acme.example")
        with atomic():
            okta = connectors_repo.create(acme.id, "okta", "ACME Okta", {}, None)
        return {"acme": acme.id, "sales": sales.id, "okta": okta.id}


def new_account(email: str, verified: bool = True) -> Account:
    account = Account(email=email, email_verified=verified)
    db.session.add(account)
    db.session.commit()
    return account


def test_no_rules_means_email_code_and_no_unit(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        result = domain_rules.explain("Anna@ACME.example")
        assert result.to_dict() == {
            "email": "anna@acme.example",
            "domain": "acme.example",
            "claim": "acme.example",
            "claim_state": "verified",
            "unit_id": acme["acme"],
            "unit": "acme",
            "unit_name": "ACME",
            "roles": [],
            "auto_join": False,
            "login_method": "email_code",
            "connector_id": None,
            "break_glass": False,
            "reasons": [
                "claim acme.example of unit acme (by DNS) covers acme.example",
                "no rules set for this domain: e-mail code, no automatic membership",
            ],
        }
        assert domain_rules.membership_for_email("anna@acme.example") is None
        assert domain_rules.login_method_for_email("anna@acme.example") == "email_code"


def test_auto_join_with_default_role(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True, default_role="buyers")
        result = domain_rules.explain("anna@acme.example")
        assert (result.joins, result.unit_slug, result.roles) == (True, "acme", ["buyers"])
        assert result.reasons[-1] == "auto_join is on: joins acme as buyers"
        assert domain_rules.membership_for_email("anna@acme.example") == (
            acme["acme"], ["buyers"]
        )
        for bad in ("admin", "Buyers", ""):
            with pytest.raises(domains.DomainError) as err:
                domain_rules.set_rules("acme.example", default_role=bad)
            assert err.value.code == "invalid_role"


def test_unverified_claims_never_join_or_route(app: Flask, acme: dict[str, str]) -> None:
    """A unit that claims somebody else's domain cannot capture its sign-ins."""
    with app.app_context():
        domains.claim("outsider", "victim.example")
        with atomic():
            other_okta = connectors_repo.create(acme["acme"], "oidc", "x", {}, None)
        outsider = units.get("outsider")
        with atomic():
            evil = connectors_repo.create(outsider.id, "oidc", "Evil IdP", {}, None)
        domain_rules.set_rules("victim.example", auto_join=True, require_sso=True,
                               connector=evil.id)
        result = domain_rules.explain("ceo@victim.example")
        assert (result.joins, result.login_method, result.unit_id) == (False, "email_code", None)
        assert result.reasons == [
            "claim victim.example is pending: only verified domains join or route to SSO"
        ]
        assert domain_rules.login_method_for_email("ceo@victim.example") == "email_code"
        assert other_okta.id != evil.id


def test_require_sso_routes_to_the_connector_except_break_glass(
    app: Flask, acme: dict[str, str]
) -> None:
    with app.app_context():
        domain_rules.set_rules(
            "acme.example", auto_join=True, require_sso=True,
            break_glass=["Admin@acme.example"],
        )
        assert domain_rules.login_method_for_email("anna@acme.example") == ("sso", acme["okta"])
        sso = domain_rules.explain("anna@acme.example")
        assert sso.joins is False and sso.connector_id == acme["okta"]
        assert "e-mail codes are refused" in sso.reasons[1]
        assert domain_rules.membership_for_email("anna@acme.example") is None
        glass = domain_rules.explain("admin@ACME.example")
        assert (glass.login_method, glass.break_glass, glass.joins) == ("email_code", True, True)
        assert domain_rules.login_method_for_email("admin@acme.example") == "email_code"
        with pytest.raises(domains.DomainError) as err:
            domain_rules.set_rules("acme.example", add_break_glass=["admin@gmail.com"])
        assert err.value.code == "invalid_break_glass"
        with pytest.raises(domains.DomainError) as err:
            domain_rules.set_rules("acme.example", add_break_glass=["admin@sub.acme.example"])
        assert err.value.code == "invalid_break_glass"
        assert domain_rules.rules_of(domains.get("acme.example"))["break_glass"] == [
            "admin@acme.example"
        ]


def test_require_sso_fails_closed_without_a_connector(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domains.claim("acme-sales", "sales.example")
        domains.verify_manually("sales.example", "contract on file", "cli:ops")
        sales = units.get("acme-sales")
        db.session.delete(connectors_repo.get(acme["okta"]))
        db.session.commit()
        with pytest.raises(domains.DomainError) as err:
            domain_rules.set_rules("sales.example", require_sso=True)
        assert err.value.code == "no_connector"
        assert domains.get("sales.example").rule is None  # nothing half-written
        with atomic():
            own = connectors_repo.create(sales.id, "saml", "Sales SAML", {}, None)
        domain_rules.set_rules("sales.example", require_sso=True)
        assert domain_rules.login_method_for_email("x@sales.example") == ("sso", own.id)
        with atomic():
            connectors_repo.delete(own.id)
        db.session.expire_all()
        assert domain_rules.login_method_for_email("x@sales.example") == "refused"
        assert domain_rules.explain("x@sales.example").reasons[-1] == (
            "auto_join is off: no automatic membership"
        )


def test_a_connector_of_another_unit_cannot_be_chosen(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        outsider = units.get("outsider")
        with atomic():
            foreign = connectors_repo.create(outsider.id, "oidc", "Foreign", {}, None)
        with pytest.raises(domains.DomainError) as err:
            domain_rules.set_rules("acme.example", require_sso=True, connector=foreign.id)
        assert err.value.code == "unknown_connector"


def test_subunit_by_profile_attribute(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules(
            "acme.example", auto_join=True, subunit_attribute="department",
            subunit_map={"Sales": "acme-sales"},
        )
        assert domain_rules.membership_for_email("a@acme.example", {"department": "Sales"}) == (
            acme["sales"], ["employee"]
        )
        other = domain_rules.explain("a@acme.example", {"department": "Legal"})
        assert other.unit_slug == "acme" and "'Legal' is not mapped" in other.reasons[-2]
        unknown = domain_rules.explain("a@acme.example")
        assert unknown.unit_slug == "acme"
        assert unknown.reasons[-2] == "department is not known: the domain's unit"
        for target in ("outsider", "acme", "nope"):
            with pytest.raises(domains.DomainError) as err:
                domain_rules.set_rules("acme.example", subunit_map={"Legal": target})
            assert err.value.code == "invalid_rule", target


def test_apply_auto_join_creates_one_audited_membership(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True)
        account = new_account("anna@acme.example")
        first = domain_rules.apply_auto_join(account)
        assert first is not None and (first.unit_id, first.roles) == (acme["acme"], ["employee"])
        again = domain_rules.apply_auto_join(account)
        assert again is not None and again.id == first.id
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "membership.auto_join")
        ).all()
        assert [(e.target, e.details["unit"]) for e in events] == [(account.id, "acme")]


def test_apply_auto_join_uses_the_first_wallets_facts(app: Flask, acme: dict[str, str]) -> None:
    """The facts of the first wallet form pick the sub-unit and stay on the access."""
    with app.app_context():
        units.add_field("acme", "division", "Division")
        domain_rules.set_rules(
            "acme.example", auto_join=True, subunit_attribute="division",
            subunit_map={"S": "acme-sales"},
        )
        account = new_account("bob@acme.example")
        joined = domain_rules.apply_auto_join(
            account, facts={"cost_centre": "CC-1", "extra": {"division": "S"}})
        assert joined is not None and joined.unit_id == acme["sales"]
        assert joined.extra == {"division": "S"} and joined.cost_centre == "CC-1"


def test_existing_membership_in_the_company_is_kept(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True)
        account = new_account("carl@acme.example")
        placed = accesses.join(account.id, acme["sales"], ["main_user"], "test", "test.join", {})
        kept = domain_rules.apply_auto_join(account)
        assert kept is not None and kept.id == placed.id and kept.roles == ["main_user"]
        count = db.session.scalar(
            select(func.count()).select_from(Access).where(Access.account_id == account.id)
        )
        assert count == 1


def test_changing_the_email_needs_verification_before_joining(
    app: Flask, acme: dict[str, str]
) -> None:
    """SECURITY.md: changing an e-mail address never changes business-unit membership
    without verifying the new address."""
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True)
        account = new_account("dana@gmail.com")
        assert domain_rules.apply_auto_join(account) is None
        account.email, account.email_verified = "dana@acme.example", False  # changed, unproven
        db.session.commit()
        assert domain_rules.apply_auto_join(account) is None
        assert accesses_repo.in_units(account.id, [acme["acme"]]) == []
        account.email_verified = True  # the code sent to the new address was entered
        db.session.commit()
        joined = domain_rules.apply_auto_join(account)
        assert joined is not None and joined.unit_id == acme["acme"]
        account.email, account.email_verified = "dana@other.example", True
        db.session.commit()
        assert domain_rules.apply_auto_join(account) is None
        # ... and moving away does not silently drop the membership either.
        assert [m.unit_id for m in accesses_repo.in_units(account.id, [acme["acme"]])] == [
            acme["acme"]
        ]


def test_blocked_accounts_do_not_join(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True)
        account = new_account("eve@acme.example")
        account.status = "blocked"
        db.session.commit()
        assert domain_rules.apply_auto_join(account) is None


def test_parallel_sign_ins_create_one_membership(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True)
        account_id = new_account("fred@acme.example").id
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def sign_in() -> None:
        try:
            with app.app_context():
                account = units_repo.account(account_id)
                assert account is not None
                barrier.wait()
                joined = domain_rules.apply_auto_join(account)
                assert joined is not None
                results.append(joined.id)
                db.session.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sign_in) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 4


@pytest.mark.parametrize("email", ["", "no-at-sign", "@acme.example", "a@", "a@-x.example", None])
def test_malformed_addresses_match_nothing(app: Flask, acme: dict[str, str], email: object) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True, require_sso=True)
        result = domain_rules.explain(email)  # type: ignore[arg-type]
        assert (result.joins, result.login_method, result.unit_id) == (False, "email_code", None)
        assert domain_rules.login_method_for_email(email) == "email_code"  # type: ignore[arg-type]
