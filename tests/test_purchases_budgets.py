"""Budgets (issue 17, item 1): money in minor units, calendar periods in a unit's
time zone (Europe/Berlin month ends across DST), setting budgets by API and CLI with
``budgets.manage``, another unit's admin seeing 404, and the most-specific rule with
the unit cap, checked through purchases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.cli import main
from idp.purchases import money
from idp.purchases.budgets import applicable, chain
from idp.purchases.periods import TimeZoneError, period_at, zone
from idp.store import purchases_repo
from idp.units import registry as units
from tests.support.api import api_for, assert_problem
from tests.support.purchases import Shop, merchant, person, token


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- money ------------------------------------------------------------------------


def test_amounts_are_parsed_strictly_into_minor_units() -> None:
    assert money.parse("100.00", "EUR") == 10000
    assert money.parse("0.5", "EUR") == 50
    assert money.parse("1500", "JPY") == 1500
    assert money.parse("1.234", "BHD") == 1234
    for bad in ("1.001", "-1", "1e3", " 1", "1,00", "01", "", "0", "0.00", "NaN"):
        with pytest.raises(money.MoneyError):
            money.parse(bad, "EUR")
    with pytest.raises(money.MoneyError):
        money.parse("1.5", "JPY")
    with pytest.raises(money.MoneyError):
        money.parse(100, "EUR")
    with pytest.raises(money.MoneyError):
        money.currency("XXX")
    assert money.format_minor(10050, "EUR") == "100.50"
    assert money.format_minor(1500, "JPY") == "1500"
    assert money.format_minor(5, "BHD") == "0.005"


# --- periods ----------------------------------------------------------------------


def test_a_berlin_month_ends_at_local_midnight_across_dst() -> None:
    # March 2026: CET (UTC+1) until the 29th, then CEST (UTC+2).
    march = period_at("month", _utc(2026, 3, 31, 21, 59, 59), "Europe/Berlin")
    assert march.key == "2026-03-01"
    assert march.starts_at == _utc(2026, 2, 28, 23, 0)
    assert march.ends_at == _utc(2026, 3, 31, 22, 0)
    april = period_at("month", _utc(2026, 3, 31, 22, 0), "Europe/Berlin")
    assert april.key == "2026-04-01" and april.starts_at == march.ends_at
    # In UTC the same instant is still March.
    assert period_at("month", _utc(2026, 3, 31, 22, 0), "UTC").key == "2026-03-01"
    # October: back to CET; the month ends at 23:00 UTC.
    assert period_at("month", _utc(2026, 10, 15), "Europe/Berlin").ends_at == _utc(
        2026, 10, 31, 23, 0)


def test_quarters_and_years_follow_the_local_calendar() -> None:
    q = period_at("quarter", _utc(2026, 12, 31, 23, 30), "Europe/Berlin")
    assert q.key == "2027-01-01"  # already 00:30 on New Year's Day in Berlin
    q = period_at("quarter", _utc(2026, 5, 20), "America/New_York")
    assert q.key == "2026-04-01" and q.ends_at == _utc(2026, 7, 1, 4, 0)
    y = period_at("year", _utc(2026, 12, 31, 14, 59), "Asia/Tokyo")
    assert y.key == "2026-01-01" and y.ends_at == _utc(2026, 12, 31, 15, 0)


def test_time_zones_are_validated() -> None:
    assert zone("Europe/Berlin").key == "Europe/Berlin"
    for bad in ("Mars/Olympus", "../etc/passwd", "", "x" * 70, "localtime", "posixrules",
                "Europe", "utc", " Europe/Berlin"):
        with pytest.raises(TimeZoneError):
            zone(bad)


# --- setting budgets --------------------------------------------------------------


@pytest.fixture
def two_units(app: Flask) -> tuple[str, str]:
    with app.app_context():
        return units.create("ACME", slug="acme").id, units.create("Globex", slug="globex").id


def test_budgets_by_api(app: Flask, client: FlaskClient, two_units: tuple[str, str]) -> None:
    acme, globex = two_units
    person(app, "ann@acme.example", acme, ["employee"])
    api = api_for(app, client, acme)
    resp = api.post(f"/units/{acme}/budgets", json={
        "scope": "access", "subject": "ann@acme.example", "period": "month",
        "amount": "100.00", "currency": "EUR", "per_order": "50.00"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    made = resp.get_json()
    assert made["amount"] == "100.00" and made["per_order"] == "50.00"
    assert made["subject"] != "ann@acme.example"  # stored as the access id
    again = api.post(f"/units/{acme}/budgets", json={
        "scope": "access", "subject": "ann@acme.example", "period": "quarter",
        "amount": "300", "currency": "EUR"}).get_json()
    assert again["id"] == made["id"] and again["period"] == "quarter"
    assert again["amount"] == "300.00" and again["per_order"] is None
    api.post(f"/units/{acme}/budgets", json={
        "scope": "unit", "period": "year", "amount": "10000.00", "currency": "EUR"})
    listed = api.get(f"/units/{acme}/budgets?limit=1").get_json()
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    rest = api.get(f"/units/{acme}/budgets?limit=1&cursor={listed['next_cursor']}").get_json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {listed["items"][0]["scope"], rest["items"][0]["scope"]} == {"access", "unit"}
    # refusals: another currency in the unit, a float-like amount, an unknown role
    assert_problem(api.post(f"/units/{acme}/budgets", json={
        "scope": "role", "subject": "employee", "period": "month", "amount": "5.00",
        "currency": "USD"}), 422, "currency_mismatch")
    assert_problem(api.post(f"/units/{acme}/budgets", json={
        "scope": "role", "subject": "employee", "period": "month", "amount": "5.001",
        "currency": "EUR"}), 422, "invalid_amount")
    assert_problem(api.post(f"/units/{acme}/budgets", json={
        "scope": "role", "subject": "janitor", "period": "month", "amount": "5",
        "currency": "EUR"}), 422, "unknown_role")
    assert_problem(api.post(f"/units/{acme}/budgets", json={
        "scope": "role", "subject": "employee", "period": "month", "amount": 5,
        "currency": "EUR"}), 422)
    # the unit's calendar
    resp = api.call("PUT", f"/units/{acme}/time-zone", json={"time_zone": "Europe/Berlin"})
    assert resp.status_code == 200 and resp.get_json()["time_zone"] == "Europe/Berlin"
    assert_problem(api.call("PUT", f"/units/{acme}/time-zone", json={"time_zone": "localtime"}),
                   422, "invalid_time_zone")
    # another unit's admin: 404 on every budget path of ACME
    other = api_for(app, client, globex)
    assert_problem(other.call("PUT", f"/units/{acme}/time-zone",
                              json={"time_zone": "UTC"}), 404)
    assert_problem(other.get(f"/units/{acme}/budgets"), 404)
    assert_problem(other.post(f"/units/{acme}/budgets", json={
        "scope": "unit", "period": "year", "amount": "1", "currency": "EUR"}), 404)
    assert_problem(other.delete(f"/units/{acme}/budgets/{made['id']}"), 404)
    assert api.delete(f"/units/{acme}/budgets/{made['id']}").status_code == 204
    assert_problem(api.delete(f"/units/{acme}/budgets/{made['id']}"), 404)
    assert [b["scope"] for b in api.get(f"/units/{acme}/budgets").get_json()["items"]] == [
        "unit"]


def test_budgets_by_cli(app: Flask, two_units: tuple[str, str]) -> None:
    acme, _ = two_units
    person(app, "ann@acme.example", acme, ["employee"])
    runner = app.test_cli_runner()
    res = runner.invoke(main, [
        "budgets", "set", "--unit", "acme", "--access", "ann@acme.example", "--period",
        "month", "--amount", "100.00", "--currency", "EUR", "--per-order", "50.00", "--json"])
    assert res.exit_code == 0, res.output
    made = json.loads(res.output)
    assert made["amount"] == "100.00" and made["scope"] == "access"
    res = runner.invoke(main, ["budgets", "set", "--unit", "acme", "--role", "employee",
                               "--group", "x", "--period", "month", "--amount", "1",
                               "--currency", "EUR", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"] == "invalid_request"
    res = runner.invoke(main, ["budgets", "set", "--unit", "acme", "--period", "month",
                               "--amount", "1.0.0", "--currency", "EUR", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"] == "invalid_amount"
    res = runner.invoke(main, ["budgets", "list", "--unit", "acme", "--json"])
    assert [b["id"] for b in json.loads(res.output)] == [made["id"]]
    res = runner.invoke(main, ["budgets", "time-zone", "--unit", "acme", "Mars/Base", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"] == "invalid_time_zone"
    res = runner.invoke(main, ["budgets", "time-zone", "--unit", "acme", "Europe/Berlin"])
    assert res.exit_code == 0 and "Europe/Berlin" in res.output
    res = runner.invoke(main, ["budgets", "remove", "--unit", "acme", made["id"], "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["budgets", "list", "--unit", "acme", "--json"])
    assert json.loads(res.output) == []


# --- which budget applies ---------------------------------------------------------


def _set(app: Flask, unit: str, *args: str) -> None:
    res = app.test_cli_runner().invoke(main, ["budgets", "set", "--unit", unit, *args,
                                              "--currency", "EUR", "--json"])
    assert res.exit_code == 0, res.output


def test_the_most_specific_budget_applies_and_the_unit_caps_everyone(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
        sales = units.create("Sales", slug="sales", parent="acme").id
        from idp.rights import groups
        groups.set_group("sales", "buyers", ["orders.create"])
    ann = person(app, "ann@acme.example", sales, ["employee", "buyers"])
    bob = person(app, "bob@acme.example", sales, ["employee"])
    cem = person(app, "cem@acme.example", sales, ["employee"])
    _set(app, "sales", "--role", "employee", "--period", "month", "--amount", "100")
    _set(app, "sales", "--group", "buyers", "--period", "month", "--amount", "300")
    _set(app, "sales", "--access", "cem@acme.example", "--period", "month", "--amount", "20")
    # the parent's pool includes sub-units and caps all of them together
    _set(app, "acme", "--period", "month", "--amount", "400", "--include-subunits")
    # a parent budget without sub-units does not apply in Sales
    _set(app, "acme", "--role", "employee", "--period", "month", "--amount", "1")
    with app.app_context():
        unit = purchases_repo.unit(sales)
        assert unit is not None
        for account, personal in ((ann, "group"), (bob, "role"), (cem, "access")):
            access = purchases_repo.access_of(account, sales)
            assert access is not None
            got = applicable(chain(unit), access)
            assert [a.budget.scope for a in got] == [personal, "unit"]
    rp = merchant(app)
    shops = {who: Shop(client, token(app, client, rp, acc, sales))
             for who, acc in (("ann", ann), ("bob", bob), ("cem", cem))}
    assert shops["cem"].buy("20.01").get_json()["reason"] == "over_budget"  # access: 20
    assert shops["cem"].buy("20.00").get_json()["status"] == "approved"
    assert shops["bob"].buy("100.01").get_json()["reason"] == "over_budget"  # role: 100
    assert shops["bob"].buy("100.00").get_json()["status"] == "approved"
    first = shops["ann"].buy("250.00").get_json()  # group: 300, more generous than role
    assert first["status"] == "approved", first
    assert first["budget"]["remaining"] == "30.00"  # the pool: 400 - 20 - 100 - 250
    # Ann's group budget has 50 left, but the unit pool only 30
    assert shops["ann"].buy("30.01").get_json()["reason"] == "over_budget"
    assert shops["ann"].buy("30.00").get_json()["status"] == "approved"
    # cancelling gives the pool back
    assert shops["ann"].post(f"/{first['id']}/cancel").get_json()["status"] == "cancelled"
    assert shops["bob"].buy("0.01").get_json()["reason"] == "over_budget"  # role spent
    assert shops["ann"].buy("20.00").get_json()["status"] == "approved"


def test_a_new_period_starts_from_zero_in_the_units_time_zone(
    app: Flask, client: FlaskClient
) -> None:
    """What a purchase reserved counts in the period it was made in; the unit's
    next period (its own calendar, Europe/Berlin) has the whole amount again."""
    from idp.purchases.budgets import standing

    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    res = app.test_cli_runner().invoke(main, ["budgets", "time-zone", "--unit", "acme",
                                              "Europe/Berlin"])
    assert res.exit_code == 0, res.output
    _set(app, "acme", "--role", "employee", "--period", "month", "--amount", "100")
    ann = person(app, "ann@acme.example", acme, ["employee"])
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    assert shop.buy("40.00").get_json()["budget"]["remaining"] == "60.00"
    with app.app_context():
        unit = purchases_repo.unit(acme)
        access = purchases_repo.access_of(ann, acme)
        assert unit is not None and access is not None and unit.time_zone == "Europe/Berlin"
        now = datetime.now(UTC)
        this = applicable(chain(unit), access, now)
        nxt = applicable(chain(unit), access, this[0].period.ends_at)
        last = applicable(chain(unit), access, this[0].period.starts_at - timedelta(seconds=1))
        for applied, left in ((this, 6000), (nxt, 10000), (last, 10000)):
            got = standing(applied, purchases_repo.usage(a.key for a in applied))
            assert got is not None and got.remaining == left, (applied[0].period, got)
        # the period ends at local midnight in Berlin: 22:00 or 23:00 UTC
        assert this[0].period.ends_at.hour in (22, 23)
