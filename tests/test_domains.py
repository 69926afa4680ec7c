"""Claimed domains proven by DNS TXT records, against a real DNS server on loopback
(SECURITY.md "Federation and domains": only DNS-verified domains auto-join;
consumer domains refused; subdomains only when listed; lapsed verification stops
auto-join; a domain belongs to one unit)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.store.db import db
from idp.store.models import AuditEvent
from idp.units import registry as units
from tests.support.dns import DnsServer


@pytest.fixture
def settings_overrides(dns_server: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 0.5}


def publish(dns_server: DnsServer, claim_name: str) -> None:
    row = domains.get(claim_name)
    dns_server.set_txt(domains.challenge_name(row.name), row.challenge)


def joining_unit(email: str) -> str | None:
    found = domain_rules.membership_for_email(email)
    return found[0] if found else None


@pytest.fixture
def acme(app: Flask) -> str:
    with app.app_context():
        return units.create("ACME", slug="acme").id


def test_claim_issues_a_random_txt_challenge(app: Flask, acme: str) -> None:
    with app.app_context():
        row = domains.claim("acme", "ACME.Example.")
        other = domains.claim("acme", "acme-group.example")
        ch = domains.challenge_of(row)
        assert (row.name, row.state, row.unit_id) == ("acme.example", "pending", acme)
        assert ch.record_name == "_unitgate-challenge.acme.example" and ch.record_type == "TXT"
        assert len(ch.value) >= 32 and ch.value != other.challenge  # >= 192 random bits
        assert timedelta(days=6) < ch.deadline_at - row.created_at <= timedelta(days=7)
        again = domains.claim("acme", "acme.example")  # idempotent while pending
        assert (again.id, again.challenge) == (row.id, row.challenge)


def test_pending_until_the_exact_value_is_published(
    app: Flask, acme: str, dns_server: DnsServer
) -> None:
    with app.app_context():
        row = domains.claim("acme", "acme.example")
        [report] = domains.check("acme.example")
        assert (report.outcome, report.state) == ("absent", "pending")
        dns_server.set_txt("_unitgate-challenge.acme.example", "wrong", row.challenge + "x")
        [report] = domains.check("acme.example")
        assert (report.outcome, report.state) == ("mismatch", "pending")
        assert joining_unit("anna@acme.example") is None
        dns_server.set_txt("_unitgate-challenge.acme.example", "v=spf1 -all", row.challenge)
        [report] = domains.check("acme.example", actor="cli:ops")
        assert (report.before, report.outcome, report.state) == ("pending", "match", "verified")
        row = domains.get("acme.example")
        assert row.verified_method == "dns" and domains.is_effective(row)
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "domain.verified")
        ).one()
        assert (event.actor, event.target, event.details) == (
            "cli:ops", "acme.example", {"method": "dns"}
        )
        assert ("udp", "_unitgate-challenge.acme.example", "TXT") in dns_server.queries


def test_large_txt_sets_are_read_over_tcp(app: Flask, acme: str, dns_server: DnsServer) -> None:
    with app.app_context():
        row = domains.claim("acme", "acme.example")
        noise = [f"other-verification-{i}-" + "x" * 200 for i in range(6)]
        dns_server.set_txt("_unitgate-challenge.acme.example", *noise, row.challenge)
        [report] = domains.check("acme.example")
        assert report.state == "verified"
        assert ("tcp", "_unitgate-challenge.acme.example", "TXT") in dns_server.queries


def test_a_pending_claim_fails_after_its_deadline_and_can_restart(
    app: Flask, acme: str, dns_server: DnsServer
) -> None:
    with app.app_context():
        row = domains.claim("acme", "acme.example")
        first_challenge = row.challenge
        report = domains.check_one(row, now=row.deadline_at + timedelta(seconds=1))
        assert (report.state, domains.get("acme.example").failure_reason) == ("failed", "deadline")
        assert domains.check() == []  # failed claims are not polled
        restarted = domains.claim("acme", "acme.example")
        assert restarted.state == "pending" and restarted.challenge != first_challenge
        publish(dns_server, "acme.example")
        assert domains.check()[0].state == "verified"


def test_only_verified_domains_auto_join(app: Flask, acme: str, dns_server: DnsServer) -> None:
    with app.app_context():
        domains.claim("acme", "acme.example")
        domain_rules.set_rules("acme.example", auto_join=True)
        assert joining_unit("anna@acme.example") is None  # pending: nothing
        publish(dns_server, "acme.example")
        domains.check()
        assert joining_unit("anna@acme.example") == acme


def test_a_lapsed_domain_stops_auto_joining(app: Flask, acme: str, dns_server: DnsServer) -> None:
    with app.app_context():
        domains.claim("acme", "acme.example")
        domain_rules.set_rules("acme.example", auto_join=True)
        publish(dns_server, "acme.example")
        domains.check()
        assert joining_unit("anna@acme.example") == acme
        assert domains.check() == []  # checked just now: not due again yet
        dns_server.remove("_unitgate-challenge.acme.example")
        [report] = domains.check(force=True)
        assert (report.before, report.state, report.outcome) == ("verified", "failed", "absent")
        row = domains.get("acme.example")
        assert row.failure_reason == "lapsed"
        assert joining_unit("anna@acme.example") is None
        assert domain_rules.explain("anna@acme.example").claim_state == "failed"
        publish(dns_server, "acme.example")  # record restored: a named check re-verifies
        assert domains.check("acme.example")[0].state == "verified"
        assert joining_unit("anna@acme.example") == acme


def test_dns_outage_keeps_the_state_until_the_validity_ends(
    app: Flask, acme: str, dns_server: DnsServer
) -> None:
    with app.app_context():
        domains.claim("acme", "acme.example")
        domain_rules.set_rules("acme.example", auto_join=True)
        publish(dns_server, "acme.example")
        domains.check()
        for mode in ("servfail", "drop"):
            dns_server.mode = mode
            [report] = domains.check(force=True)
            assert (report.outcome, report.state) == ("unreachable", "verified")
        row = domains.get("acme.example")
        assert "timeout" in (row.last_check_result or "")
        assert domains.is_effective(row)
        later = row.verified_at + timedelta(days=30, seconds=1)
        assert not domains.is_effective(row, later)
        assert domain_rules.explain("anna@acme.example", now=later).joins is False


def test_consumer_domains_are_refused(app: Flask, acme: str) -> None:
    with app.app_context():
        for name in ("gmail.com", "GMAIL.com.", "mail.gmail.com", "*.outlook.com", "web.de"):
            with pytest.raises(domains.DomainError) as err:
                domains.claim("acme", name)
            assert err.value.code == "consumer_domain", name
        assert domains.list_claims() == []
        assert domain_rules.explain("anna@gmail.com").reasons == [
            "gmail.com is a consumer mail domain: never joins a company"
        ]


@pytest.mark.parametrize("settings_overrides", [{"consumer_domains": "mail.example, ISP.test"}])
def test_extra_consumer_domains_come_from_the_settings(app: Flask, acme: str) -> None:
    with app.app_context():
        for name in ("mail.example", "isp.test", "x.isp.test"):
            with pytest.raises(domains.DomainError) as err:
                domains.claim("acme", name)
            assert err.value.code == "consumer_domain"


def test_manual_verification_of_a_consumer_domain_is_impossible(app: Flask, acme: str) -> None:
    with app.app_context(), pytest.raises(domains.DomainError):
        domains.verify_manually("gmail.com", "trust me", "cli:ops")


def test_a_domain_belongs_to_one_unit(app: Flask, acme: str) -> None:
    with app.app_context():
        units.create("Other", slug="other")
        domains.claim("acme", "acme.example")
        domains.claim("acme", "*.corp.example")
        domains.claim("other", "shop.example")
        cases = [
            "acme.example",  # exact name of another unit
            "eu.corp.example",  # inside another unit's wildcard
            "a.b.corp.example",
            "*.corp.example",
        ]
        for name in cases:
            with pytest.raises(domains.DomainError) as err:
                domains.claim("other", name)
            assert err.value.code == "domain_taken", name
        domains.claim("other", "x.partner.example")
        with pytest.raises(domains.DomainError) as err:
            domains.claim("acme", "*.partner.example")  # would cover other's name
        assert err.value.code == "domain_taken"
        domains.claim("acme", "partner.example")  # the apex alone covers no subdomain
        with pytest.raises(domains.DomainError) as err:
            domains.set_subdomains("partner.example", True)
        assert err.value.code == "domain_taken"
        assert {d.name: d.unit.slug for d in domains.list_claims()} == {
            "acme.example": "acme",
            "corp.example": "acme",
            "shop.example": "other",
            "partner.example": "acme",
            "x.partner.example": "other",
        }


def test_subdomains_only_when_listed_or_wildcarded(
    app: Flask, acme: str, dns_server: DnsServer
) -> None:
    with app.app_context():
        domains.claim("acme", "acme.example")
        domain_rules.set_rules("acme.example", auto_join=True)
        publish(dns_server, "acme.example")
        domains.check()
        assert joining_unit("anna@acme.example") == acme
        assert joining_unit("bob@sales.acme.example") is None
        assert joining_unit("eve@acme.example.evil.test") is None
        assert joining_unit("eve@notacme.example") is None
        # Listed: its own claim, its own TXT record, its own rules.
        domains.claim("acme", "sales.acme.example")
        domain_rules.set_rules("sales.acme.example", auto_join=True)
        assert joining_unit("bob@sales.acme.example") is None  # listed but pending
        publish(dns_server, "sales.acme.example")
        domains.check()
        assert joining_unit("bob@sales.acme.example") == acme
        assert joining_unit("carl@eu.sales.acme.example") is None
        # Wildcard: the apex record proves every subdomain.
        domains.set_subdomains("acme.example", True)
        assert joining_unit("carl@eu.sales.acme.example") == acme
        assert domain_rules.explain("carl@x.acme.example").claim == "*.acme.example"


def test_manual_verification_needs_a_reason_and_is_audited(app: Flask, acme: str) -> None:
    with app.app_context():
        domains.claim("acme", "acme.example")
        for reason in ("", "   "):
            with pytest.raises(domains.DomainError) as err:
                domains.verify_manually("acme.example", reason, "cli:ops")
            assert err.value.code == "reason_required"
        assert domains.get("acme.example").state == "pending"
        row = domains.verify_manually("acme.example", "Registrar letter 2024-113", "cli:ops")
        assert (row.state, row.verified_method) == ("verified", "manual")
        assert row.verification_note == "Registrar letter 2024-113"
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "domain.verified")
        ).one()
        assert event.actor == "cli:ops"
        assert event.details == {"method": "manual", "reason": "Registrar letter 2024-113"}
        assert domains.check(force=True) == []  # not re-checked by DNS
        assert domains.is_effective(row, row.verified_at + timedelta(days=3650))


@pytest.mark.parametrize(
    "name",
    ["", "localhost", "a..b", "-a.example", "a-.example", "1.2.3.4", "ex ample.com",
     "x" * 64 + ".example", "a_b.example", "@acme.example", None, 7],
)
def test_malformed_names_are_refused(app: Flask, acme: str, name: object) -> None:
    with app.app_context(), pytest.raises(domains.DomainError) as err:
        domains.claim("acme", name)  # type: ignore[arg-type]
    assert err.value.code == "invalid_domain"


def test_international_names_are_stored_as_punycode(app: Flask, acme: str) -> None:
    with app.app_context():
        row = domains.claim("acme", "Bücher.Example")
        assert row.name == "xn--bcher-kva.example"
        assert domains.email_domain("anna@BÜCHER.example") == "xn--bcher-kva.example"
        assert domains.challenge_of(row).record_name == "_unitgate-challenge.xn--bcher-kva.example"


def test_removing_a_claim_drops_its_rules(app: Flask, acme: str) -> None:
    with app.app_context():
        domains.claim("acme", "acme.example")
        domain_rules.set_rules("acme.example", auto_join=True)
        assert domains.remove("acme.example", actor="cli:ops") is True
        assert domains.remove("acme.example") is False
        assert domains.list_claims() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
     ("[::1]:5300", ("::1", 5300)), ("::1", ("::1", 53)), ("localhost:53", None)],
)
def test_resolver_setting_forms(text: str, expected: tuple[str, int] | None) -> None:
    host, port = domains.parse_resolver(text)
    if expected is None:
        assert host in ("127.0.0.1", "::1") and port == 53
    else:
        assert (host, port) == expected
