"""The per-process cache of domain claims (:mod:`idp.domains.lookup`): repeated
lookups run no SQL; every kind of write in this process is seen by the very next
lookup (no sleep); another process (here: a second app on the same database) sees
it once its 2-second entry expires; time-dependent validity is decided at lookup;
uncommitted changes are never cached."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from idp.cli import main
from idp.config import apply as config_apply
from idp.domains import lookup as domain_lookup
from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.domains import scheduler as domain_scheduler
from idp.store import connectors_repo, unit_of_work
from idp.store.db import db
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.backends import Backend
from tests.support.caches import another_node, expire_cache_entries, statements
from tests.support.dns import DnsServer


@pytest.fixture
def settings_overrides(dns_server: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 0.5}


@pytest.fixture
def acme(app: Flask) -> dict[str, str]:
    """ACME (with a Sales sub-unit and an Okta connector), acme.example verified by hand."""
    with app.app_context():
        acme = units.create("ACME", slug="acme", permission_groups=["buyers"])
        sales = units.create("ACME Sales", parent="acme", slug="acme-sales")
        domains.claim("acme", "acme.example")
        domains.verify_manually("acme.example", "test", "test")
        with atomic():
            okta = connectors_repo.create(acme.id, "okta", "ACME Okta", {}, None)
        return {"acme": acme.id, "sales": sales.id, "okta": okta.id}


def explain(app: Flask, email: str, **kwargs: object) -> domain_rules.Explanation:
    """Explain in a fresh app context (a new request's session)."""
    with app.app_context():
        return domain_rules.explain(email, **kwargs)  # type: ignore[arg-type]


def test_a_repeated_lookup_runs_no_sql(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True, subunit_attribute="division",
                               subunit_map={"Sales": "acme-sales"}, require_sso=True,
                               add_break_glass=["root@acme.example"])
    first = explain(app, "anna@acme.example", attributes={"division": "Sales"})
    with statements(app) as seen:
        again = explain(app, "anna@acme.example", attributes={"division": "Sales"})
        with app.app_context():
            assert domain_rules.login_method_for_email("bob@acme.example") == ("sso", acme["okta"])
            assert domain_rules.login_method_for_email("root@acme.example") == "email_code"
    assert seen == []
    assert again == first


def test_cached_values_are_frozen_snapshots(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True, require_sso=True)
        found = domain_lookup.match("acme.example")
        claim = found.effective
        assert isinstance(claim, domain_lookup.ClaimInfo) and claim is found.nearest
        with pytest.raises(dataclasses.FrozenInstanceError):
            claim.state = "failed"  # type: ignore[misc]
        assert claim.rule is not None and claim.rule.sso is not None
        assert claim.tree == frozenset({acme["acme"], acme["sales"]})
        assert isinstance(claim.rule.break_glass, frozenset)
        for value in (claim, claim.unit, claim.rule, claim.rule.sso):
            assert not hasattr(value, "_sa_instance_state")


def test_a_new_claim_and_its_verification_are_seen_at_once(
    app: Flask, acme: dict[str, str]
) -> None:
    assert explain(app, "x@shop.example").claim is None  # a miss, now cached
    with app.app_context():
        domains.claim("acme", "shop.example")
    assert explain(app, "x@shop.example").claim_state == "pending"
    with app.app_context():
        domains.verify_manually("shop.example", "test", "test")
    assert explain(app, "x@shop.example").unit_slug == "acme"


def test_dns_lapse_and_removal_are_seen_at_once(
    app: Flask, acme: dict[str, str], dns_server: DnsServer
) -> None:
    with app.app_context():
        row = domains.claim("acme", "corp.example")
        dns_server.set_txt(domains.challenge_name(row.name), row.challenge)
        assert domains.check("corp.example")[0].state == "verified"
    assert explain(app, "x@corp.example").unit_slug == "acme"
    dns_server.remove(domains.challenge_name("corp.example"))
    with app.app_context():
        assert domains.check("corp.example")[0].state == "failed"
    assert explain(app, "x@corp.example").claim_state == "failed"
    with app.app_context():
        assert domains.remove("corp.example")
    assert explain(app, "x@corp.example").claim is None


def test_the_scheduler_lapse_is_seen_at_once(
    app: Flask, acme: dict[str, str], dns_server: DnsServer
) -> None:
    with app.app_context():
        row = domains.claim("acme", "corp.example")
        dns_server.set_txt(domains.challenge_name(row.name), row.challenge)
        domains.check("corp.example")
    assert explain(app, "x@corp.example").claim_state == "verified"
    dns_server.remove(domains.challenge_name("corp.example"))
    with app.app_context():
        row = domains.get("corp.example")
        assert row.last_checked_at is not None
        row.last_checked_at -= timedelta(days=365)
        unit_of_work.save(row)
        assert [r.state for r in domain_scheduler.run_due_checks() or []] == ["failed"]
    assert explain(app, "x@corp.example").claim_state == "failed"


def test_wildcard_changes_are_seen_at_once(app: Flask, acme: dict[str, str]) -> None:
    assert explain(app, "x@eu.acme.example").claim is None
    with app.app_context():
        domains.set_subdomains("acme.example", True)
    assert explain(app, "x@eu.acme.example").claim == "*.acme.example"
    with app.app_context():
        domains.set_subdomains("acme.example", False)
    assert explain(app, "x@eu.acme.example").claim is None


def test_rule_and_break_glass_changes_are_seen_at_once(
    app: Flask, acme: dict[str, str]
) -> None:
    assert explain(app, "root@acme.example").login_method == "email_code"  # no rule yet
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True, default_role="buyers")
    assert explain(app, "root@acme.example").roles == ["buyers"]
    with app.app_context():
        domain_rules.set_rules("acme.example", require_sso=True)
    assert explain(app, "root@acme.example").login_method == "sso"
    with app.app_context():
        domain_rules.set_rules("acme.example", add_break_glass=["root@acme.example"])
    assert explain(app, "root@acme.example").break_glass is True
    with app.app_context():
        domain_rules.set_rules("acme.example", remove_break_glass=["root@acme.example"])
    assert explain(app, "root@acme.example").login_method == "sso"


def test_connector_changes_are_seen_at_once(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", require_sso=True)
    assert explain(app, "x@acme.example").connector_id == acme["okta"]
    with app.app_context(), atomic():
        connectors_repo.update(connectors_repo.get(acme["okta"]), enabled=False)
    assert explain(app, "x@acme.example").login_method == "refused"
    with app.app_context(), atomic():
        connectors_repo.update(connectors_repo.get(acme["okta"]), enabled=True)
    assert explain(app, "x@acme.example").login_method == "sso"
    with app.app_context(), atomic():
        assert connectors_repo.delete(acme["okta"])
    assert explain(app, "x@acme.example").login_method == "refused"


def test_unit_changes_are_seen_at_once(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domain_rules.set_rules("acme.example", auto_join=True, subunit_attribute="division",
                               subunit_map={"Sales": "acme-sales"})
    sales = {"division": "Sales"}
    assert explain(app, "x@acme.example", attributes=sales).unit_slug == "acme-sales"
    with app.app_context():
        units.update("acme", name="ACME Group")
        units.update("acme-sales", parent=None)  # moved out of the claim's unit
    moved = explain(app, "x@acme.example", attributes=sales)
    assert (moved.unit_slug, moved.unit_name) == ("acme", "ACME Group")
    with app.app_context():
        units.update("acme-sales", parent="acme")
    assert explain(app, "x@acme.example", attributes=sales).unit_slug == "acme-sales"
    with app.app_context():
        units.delete("acme-sales")
    assert explain(app, "x@acme.example", attributes=sales).unit_slug == "acme"


def test_cli_and_apply_changes_are_seen_at_once(
    app: Flask, runner: FlaskCliRunner, acme: dict[str, str]
) -> None:
    assert explain(app, "x@shop.example").claim is None
    for args in (["domains", "add", "--unit", "acme", "shop.example"],
                 ["domains", "verify", "shop.example", "--manual", "--reason", "test"],
                 ["domains", "rules", "shop.example", "--auto-join"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    assert explain(app, "x@shop.example").joins is True
    config = (
        "version: 1\nunits:\n  - slug: acme\n    name: ACME\n    domains:\n"
        "      - name: shop.example\n        rules: {auto_join: false}\n"
    )
    with app.app_context():
        config_apply.apply(config_apply.parse(config), actor="test")
    assert explain(app, "x@shop.example").joins is False


def test_validity_is_decided_at_lookup_not_when_cached(app: Flask, acme: dict[str, str]) -> None:
    with app.app_context():
        domains.claim("acme", "dns.example")
        row = domains.get("dns.example")
        now = domains._now()
        row.state, row.verified_method, row.verified_at = "verified", "dns", now
        unit_of_work.save(row)
        validity = timedelta(days=app.extensions["unitgate"].settings.domain_validity_days)
        assert domain_lookup.match("dns.example").effective is not None  # cached now
        later = now + validity + timedelta(seconds=1)
        assert domain_lookup.match("dns.example", later).effective is None
        result = domain_rules.explain("x@dns.example", now=later)
        assert result.claim_state == "verified" and result.unit_id is None


def test_uncommitted_changes_are_read_through_and_never_cached(
    app: Flask, acme: dict[str, str]
) -> None:
    assert explain(app, "x@acme.example").unit_slug == "acme"
    with app.app_context():
        row = domains.get("acme.example")
        row.state = "failed"  # not committed
        assert domain_rules.explain("x@acme.example").claim_state == "failed"
        db.session.flush()
        assert domain_rules.explain("x@acme.example").claim_state == "failed"
        db.session.rollback()
    assert explain(app, "x@acme.example").claim_state == "verified"


def test_another_process_sees_a_change_when_its_entry_expires(
    app: Flask, acme: dict[str, str], migrated: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with another_node(migrated, dns_resolver="127.0.0.1:9") as other:
        assert explain(other, "x@acme.example").unit_slug == "acme"
        with app.app_context():
            domains.remove("acme.example")
        assert explain(app, "x@acme.example").claim is None
        # The other node keeps its copy until the entry expires (at most 2 s) ...
        assert explain(other, "x@acme.example").unit_slug == "acme"
        expire_cache_entries(monkeypatch)
        # ... and then reads the database again.
        assert explain(other, "x@acme.example").claim is None


def test_a_read_racing_a_commit_stores_nothing(app: Flask) -> None:
    with app.app_context():
        cache = domain_lookup.CACHE
        before = cache.generation()
        cache.invalidate()  # what a commit of a watched model does
        cache.store("late.example", (), before)
        assert cache.peek("late.example") is None
