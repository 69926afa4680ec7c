"""The cost of a purchase authorisation (issue 17, "Bench"): the SQL statements of
``POST /api/v1/purchases`` on a warm node, so the hot path cannot silently grow
back, and the per-process caches it relies on (unit chain, budget definitions,
payment methods) answering changes at once in this process and within 2 s on
another node."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.cli import main
from idp.purchases import budgets
from idp.rights import SYSTEM
from idp.units import registry as units
from tests.support.backends import Backend
from tests.support.caches import another_node, expire_cache_entries, statements
from tests.support.purchases import Shop, merchant, person, token


@pytest.fixture
def acme(app: Flask) -> str:
    with app.app_context():
        return units.create("ACME", slug="acme").id


def _cli(app: Flask, *args: str) -> None:
    res = app.test_cli_runner().invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output


def test_a_warm_authorisation_costs_seven_statements(
    app: Flask, client: FlaskClient, acme: str
) -> None:
    """Token (grant with its account), the buyer's accesses with their units (which
    also decide ``orders.create``), the budgets' lock, their usage, one update of
    both usage rows, the purchase and the audit event (on PostgreSQL with the audit
    log's commit lock in the same statement): nothing else. The unit chain, the
    budgets' definitions and the payment methods come from the per-process caches;
    the answer's remaining budget from the reservation."""
    ann = person(app, "ann@acme.example", acme, ["employee"])
    with app.app_context():
        budgets.set_budget(SYSTEM, acme, budgets.BudgetInput(
            "role", "employee", "month", "100.00", "EUR", "60.00"))
        budgets.set_budget(SYSTEM, acme, budgets.BudgetInput(
            "unit", None, "month", "1000.00", "EUR"))
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    assert shop.buy("1.00").get_json()["status"] == "approved"  # warm: caches filled
    with statements(app) as seen:
        answer = shop.buy("2.00").get_json()
    assert answer["status"] == "approved" and answer["budget"]["remaining"] == "97.00"
    assert len(seen) == 7, "\n".join(seen)
    if any("pg_advisory_xact_lock" in s for s in seen):  # PostgreSQL
        assert "INSERT INTO audit_events" in seen[-1] and "FROM audit_lock" in seen[-1]
    cached = ("\nFROM units", "budgets.unit_id IN", "payment_methods", "RECURSIVE")
    assert not [s for s in seen if any(c in s for c in cached)]


def test_budget_and_method_changes_count_at_once_here_and_within_2s_elsewhere(
    app: Flask, client: FlaskClient, acme: str, migrated: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ann = person(app, "ann@acme.example", acme, ["employee"])
    _cli(app, "budgets", "set", "--unit", "acme", "--access", "ann@acme.example",
         "--period", "month", "--amount", "100.00", "--currency", "EUR")
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    assert shop.buy("60.00").get_json()["status"] == "approved"
    with another_node(migrated) as other:
        other_shop = Shop(other.test_client(), shop.access_token)
        assert other_shop.buy("1.00").get_json()["status"] == "approved"  # cached there
        # lowered here: this node's caches forget at the commit
        _cli(app, "budgets", "set", "--unit", "acme", "--access", "ann@acme.example",
             "--period", "month", "--amount", "50.00", "--currency", "EUR")
        assert shop.buy("1.00").get_json()["reason"] == "over_budget"
        # the other node may answer from its copy for at most 2 s
        expire_cache_entries(monkeypatch)
        assert other_shop.buy("1.00").get_json()["reason"] == "over_budget"


def test_an_amount_change_locks_every_budget_it_touches_at_once(
    app: Flask, client: FlaskClient, acme: str
) -> None:
    """A change of amount releases the old charges and reserves against the budgets
    that apply now, which may be others (here a personal budget set meanwhile): all
    of them, old and new, are locked by one statement in id order before any usage
    changes, so two parallel changes over the same budgets the other way round cannot
    deadlock (locking the old ones and then the new ones could)."""
    ann = person(app, "ann@acme.example", acme, ["employee"])
    with app.app_context():
        budgets.set_budget(SYSTEM, acme, budgets.BudgetInput(
            "role", "employee", "month", "100.00", "EUR"))
        budgets.set_budget(SYSTEM, acme, budgets.BudgetInput(
            "unit", None, "month", "1000.00", "EUR"))
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    bought = shop.buy("10.00").get_json()
    assert bought["status"] == "approved"
    with app.app_context():  # now ann's own budget applies instead of the role's
        budgets.set_budget(SYSTEM, acme, budgets.BudgetInput(
            "access", "ann@acme.example", "month", "50.00", "EUR"))
    with statements(app) as seen:
        changed = shop.post(f"/{bought['id']}/amount", json={"amount": "12.00"})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["amount"] == "12.00"
    assert shop.buy("38.01").get_json()["reason"] == "over_budget"  # 12 of ann's 50 used
    locks = [i for i, s in enumerate(seen) if "budgets.id IN" in s
             and ("FOR UPDATE" in s or s.lstrip().upper().startswith("UPDATE BUDGETS"))]
    usage = [i for i, s in enumerate(seen) if s.lstrip().upper().startswith(
        ("UPDATE BUDGET_USAGE", "INSERT INTO BUDGET_USAGE"))]
    assert len(locks) == 1 and usage and locks[0] < usage[0], "\n".join(seen)  # once
    first = seen[locks[0]]  # its only parameters are the ids: role, unit and ann's own
    assert first.count("%(ids_") + first.count("?") == 3, first
