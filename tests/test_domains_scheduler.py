"""The in-server periodic re-check: due claims are checked, one process at a time."""

from __future__ import annotations

import threading

import pytest
from flask import Flask

from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.domains import scheduler as domain_scheduler
from idp.services import ephemeral
from idp.store import unit_of_work
from idp.units import registry as units
from tests.support.dns import DnsServer


@pytest.fixture
def settings_overrides(dns_server: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 0.5}


@pytest.fixture
def claim(app: Flask, dns_server: DnsServer) -> str:
    with app.app_context():
        units.create("ACME", slug="acme")
        row = domains.claim("acme", "acme.example")
        domain_rules.set_rules("acme.example", auto_join=True)
        dns_server.set_txt(domains.challenge_name(row.name), row.challenge)
        return row.name


def test_due_claims_are_checked(app: Flask, claim: str, dns_server: DnsServer) -> None:
    with app.app_context():
        reports = domain_scheduler.run_due_checks()
        assert reports is not None
        assert [(r.domain, r.state) for r in reports] == [("acme.example", "verified")]
        assert domain_scheduler.run_due_checks() == []  # verified just now: not due
        assert ephemeral().get(domain_scheduler.LOCK_KEY) is None  # lock released


def test_only_one_process_checks_at_a_time(app: Flask, claim: str) -> None:
    with app.app_context():
        assert ephemeral().add(domain_scheduler.LOCK_KEY, "other-node", 60)
        assert domain_scheduler.run_due_checks() is None
        assert domains.get(claim).state == "pending"


def test_the_thread_lapses_a_domain_whose_record_is_gone(
    app: Flask, claim: str, dns_server: DnsServer
) -> None:
    with app.app_context():
        domains.check()
        assert domains.get(claim).state == "verified"
        row = domains.get(claim)
        row.last_checked_at = row.last_checked_at.replace(year=row.last_checked_at.year - 1)
        unit_of_work.save(row)  # last checked a year ago: due again
    dns_server.remove(f"_unitgate-challenge.{claim}")
    done = threading.Event()
    scheduler = domain_scheduler.start_domain_scheduler(app, tick=0.05)
    try:
        for _ in range(400):  # wait for one full tick, not for a time
            if scheduler.ticks >= 1:
                done.set()
                break
            scheduler.stopping.wait(0.05)
    finally:
        scheduler.stop()
        scheduler.join(timeout=10)
    assert done.is_set()
    with app.app_context():
        row = domains.get(claim)
        assert (row.state, row.failure_reason) == ("failed", "lapsed")
        assert domain_rules.membership_for_email("anna@acme.example") is None
