"""Approval policies (issue 17, item 3): a company's amount thresholds define a chain
(the buyer's manager, then a holder of ``approvals.decide`` in the company deciding
for a location); each step's approver gets the e-mail (a real SMTP server) when the
step starts; a rejection ends the chain; a sub-unit inherits the policy; the policy's
expiry; ``approval_required_above`` from the policy; the approver changes the lines
and the merchant sees them; the sign-in returns to the link's page but never to
another origin; another unit's admin gets 404 for the policy."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts import accesses
from idp.cli import main
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import api_for, assert_problem
from tests.support.login import csrf_token, path_of, submit_code, submit_email
from tests.support.purchases import Shop, merchant, person, token
from tests.support.smtp import SmtpSink, code_in, text_of

LINK_RE = re.compile(r"(http://localhost/account/approvals/[0-9a-f]{32}\?link=\S+)")


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


def _cli(app: Flask, *args: str) -> dict[str, object]:
    res = app.test_cli_runner().invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output
    out: dict[str, object] = json.loads(res.output)
    return out


def _sign_in(web: FlaskClient, smtp: SmtpSink, email: str, start: str = "/account") -> str:
    """The real dashboard sign-in starting at ``start``, the code read from the SMTP
    server; where the browser is sent after it."""
    resp = web.get(start)
    assert resp.status_code == 303, resp.status_code
    login = path_of(resp)
    after = len(smtp.messages)
    submit_email(web, login, email)
    resp = submit_code(web, login, code_in(smtp.last_to(email, after=after)))
    assert resp.status_code == 303
    done = web.get(resp.headers["Location"])
    if done.status_code != 303:  # a page of the login (the SCIM people's profile step)
        return str(resp.headers["Location"])
    return str(done.headers["Location"])


def _link(smtp: SmtpSink, email: str, after: int) -> str:
    found = LINK_RE.search(text_of(smtp.last_to(email, after=after)))
    assert found, "no approval link in the e-mail"
    parts = urlsplit(found.group(1))
    return f"{parts.path}?{parts.query}"


def _mailed(smtp: SmtpSink, email: str, after: int, until: int | None = None) -> bool:
    """Whether an approval link went to ``email`` in the messages [after:until]. Check
    it after a later message to the same person arrived (mail leaves in order)."""
    return any(m["To"] == email and LINK_RE.search(text_of(m))
               for m in smtp.messages[after:until])


def _post(web: FlaskClient, page: str, **data: str) -> object:
    html = web.get(page).get_data(as_text=True)
    return web.post(page.split("?")[0], data={"csrf_token": csrf_token(html), **data})


@pytest.fixture
def company(app: Flask) -> dict[str, str]:
    """ACME (the company) with a location Berlin; HR's SCIM names the worker's
    manager; the CFO holds approvals.decide (commercial_contact) in ACME only; the
    worker buys in Berlin. The policy is set on ACME: Berlin inherits it."""
    from idp.provisioning import service as provisioning
    from idp.provisioning.service import Actor, DirectoryUser
    from tests.support.scim import make_unit

    acme = make_unit(app, "acme", verified=("acme.example",))
    hr = Actor("scim", "scim:test")
    with app.app_context():
        berlin = units.create("Berlin", parent="acme", slug="acme-berlin").id
        boss = provisioning.create_user(acme, DirectoryUser(user_name="boss@acme.example"),
                                        hr).id
        worker = provisioning.create_user(
            acme, DirectoryUser(user_name="wkr@acme.example", manager_id=boss), hr).id
    with app.app_context(), atomic():
        accesses.create(worker, berlin, ["employee"], "test", event=None)
    person(app, "cfo@acme.example", acme, ["commercial_contact"])
    shown = _cli(app, "approvals", "policy", "set", "--unit", "acme",
                 "--step", "above=500.00,approvers=manager",
                 "--step", "above=5000.00,approvers=permission",
                 "--currency", "EUR", "--expiry-hours", "48")
    assert shown["steps"] == [{"above": "500.00", "approvers": "manager"},
                              {"above": "5000.00", "approvers": "permission"}]
    return {"acme": acme, "berlin": berlin, "worker": worker}


def test_a_two_step_chain_across_the_company_and_its_location(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, company: dict[str, str]
) -> None:
    shop = Shop(client, token(app, client, merchant(app), company["worker"], company["berlin"]))
    # below every threshold: approved at once; the facts say where approval starts
    small = shop.buy("400.00").get_json()
    assert small["status"] == "approved" and small["approval_required_above"] == "500.00"
    # the location inherits the company's policy
    inherited = _cli(app, "approvals", "policy", "show", "--unit", "acme-berlin")
    assert inherited["inherited_from"] == company["acme"]
    after = len(smtp_server.messages)
    answer = shop.buy("6000.00", order_ref="PO-6000").get_json()
    assert answer["status"] == "pending_approval" and answer["reason"] == "approval_policy"
    boss_link = _link(smtp_server, "boss@acme.example", after)
    # the CFO cannot decide step 1 (and got no e-mail for it)
    cfo = app.test_client()
    _sign_in(cfo, smtp_server, "cfo@acme.example")
    assert not _mailed(smtp_server, "cfo@acme.example", after)
    assert cfo.get(boss_link.split("?")[0]).status_code == 404
    # step 1: the manager approves; the order still waits
    boss = app.test_client()
    _sign_in(boss, smtp_server, "boss@acme.example")
    page = boss.get(boss_link)
    assert page.status_code == 200 and "Approval step 1 of 2" in page.get_data(as_text=True)
    step2 = len(smtp_server.messages)
    assert _post(boss, boss_link, action="approve").status_code == 303
    assert shop.get(answer["id"]).get_json()["status"] == "pending_approval"
    assert boss.get(boss_link).status_code == 404  # their step is over
    # step 2: the CFO (in the company) gets the e-mail now and decides for Berlin
    cfo_link = _link(smtp_server, "cfo@acme.example", step2)
    assert "Approval step 2 of 2" in cfo.get(cfo_link).get_data(as_text=True)
    assert _post(cfo, cfo_link, action="approve").status_code == 303
    got = shop.get(answer["id"]).get_json()
    assert got["status"] == "approved" and got["approval"]["status"] == "approved"
    # an order between the thresholds needs the manager alone
    after = len(smtp_server.messages)
    mid = shop.buy("1000.00").get_json()
    assert mid["status"] == "pending_approval"
    mid_link = _link(smtp_server, "boss@acme.example", after)
    # the manager cannot raise it past the CFO's threshold (their step would be skipped)
    assert _post(boss, mid_link, action="change", amount="5000.01").status_code == 422
    assert _post(boss, mid_link, action="change", amount="5000.00").status_code == 303
    assert _post(boss, mid_link, action="approve").status_code == 303
    assert shop.get(mid["id"]).get_json()["status"] == "approved"
    _sign_in(app.test_client(), smtp_server, "cfo@acme.example")  # a later mail to the CFO
    assert not _mailed(smtp_server, "cfo@acme.example", after)
    # the merchant cannot raise an approved order into the chain afterwards
    raised = shop.post(f"/{small['id']}/amount", json={"amount": "700.00"})
    assert raised.status_code == 409 and raised.get_json()["code"] == "approval_required"
    assert shop.post(f"/{small['id']}/amount", json={"amount": "300.00"}).status_code == 200


def test_a_rejection_at_the_first_step_ends_the_chain(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, company: dict[str, str]
) -> None:
    shop = Shop(client, token(app, client, merchant(app), company["worker"], company["berlin"]))
    after = len(smtp_server.messages)
    answer = shop.buy("7000.00").get_json()
    link = _link(smtp_server, "boss@acme.example", after)
    boss = app.test_client()
    _sign_in(boss, smtp_server, "boss@acme.example")
    assert _post(boss, link, action="reject", reason="Too much").status_code == 303
    got = shop.get(answer["id"]).get_json()
    assert got["status"] == "refused" and got["reason"] == "rejected"
    assert got["approval"]["status"] == "rejected"
    _sign_in(app.test_client(), smtp_server, "cfo@acme.example")  # a later mail to the CFO
    assert not _mailed(smtp_server, "cfo@acme.example", after)
    assert _post(boss, link, action="approve").status_code == 409  # decided


def test_a_step_without_anyone_refuses_and_a_sub_unit_policy_wins(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, company: dict[str, str]
) -> None:
    # Berlin sets its own policy: a group nobody holds decides above 100
    from idp.rights import groups

    with app.app_context():
        groups.set_group("acme", "buyers-lead", ["orders.create"])
    _cli(app, "approvals", "policy", "set", "--unit", "acme-berlin",
         "--step", "above=100.00,approvers=group:buyers-lead", "--currency", "EUR")
    shop = Shop(client, token(app, client, merchant(app), company["worker"], company["berlin"]))
    refused = shop.buy("200.00").get_json()
    assert refused["status"] == "refused" and refused["reason"] == "no_approver"
    assert refused["approval_required_above"] == "100.00"
    # a holder of the group in the company decides
    person(app, "lead@acme.example", company["acme"], ["buyers-lead"])
    after = len(smtp_server.messages)
    answer = shop.buy("200.00").get_json()
    assert answer["status"] == "pending_approval"
    lead_link = _link(smtp_server, "lead@acme.example", after)
    lead = app.test_client()
    _sign_in(lead, smtp_server, "lead@acme.example")
    assert _post(lead, lead_link, action="approve").status_code == 303
    assert shop.get(answer["id"]).get_json()["status"] == "approved"
    # clearing Berlin's own policy brings the company's back
    assert _cli(app, "approvals", "policy", "clear", "--unit", "acme-berlin") == {
        "removed": True}
    assert shop.buy("200.00").get_json()["status"] == "approved"


def test_the_policys_expiry_and_the_claim(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, company: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from idp.purchases import approvals
    from idp.store.models import utcnow

    # a second company without a policy: its approvals wait IDP_APPROVAL_HOURS (72)
    with app.app_context():
        globex = units.create("Globex", slug="globex").id
    _cli(app, "budgets", "set", "--unit", "globex", "--role", "employee", "--period",
         "month", "--amount", "1000.00", "--per-order", "300.00", "--currency", "EUR")
    gus = person(app, "gus@globex.example", globex, ["employee"])
    person(app, "gil@globex.example", globex, ["commercial_contact"])
    g_shop = Shop(client, token(app, client, merchant(app, "G"), gus, globex))
    g_pending = g_shop.buy("400.00").get_json()
    assert g_pending["status"] == "pending_approval"
    assert g_pending["approval_required_above"] == "300.00"  # the per-order limit
    shop = Shop(client, token(app, client, merchant(app), company["worker"], company["berlin"]))
    after = len(smtp_server.messages)
    pending = shop.buy("800.00").get_json()
    link = _link(smtp_server, "boss@acme.example", after)
    boss = app.test_client()
    _sign_in(boss, smtp_server, "boss@acme.example")
    expires = pending["approval"]["expires_at"]
    assert expires.startswith((utcnow() + timedelta(hours=48)).isoformat()[:13])
    # a budget with a per-order limit below the policy's threshold: the tighter wins
    _cli(app, "budgets", "set", "--unit", "acme-berlin", "--role", "employee", "--period",
         "month", "--amount", "10000.00", "--per-order", "250.00", "--currency", "EUR")
    assert shop.buy("10.00").get_json()["approval_required_above"] == "250.00"
    later = utcnow() + timedelta(hours=49)
    monkeypatch.setattr(approvals, "utcnow", lambda: later)
    got = shop.get(pending["id"]).get_json()
    assert got["status"] == "refused" and got["reason"] == "approval_expired"
    # the e-mail link lives as long as its approval: 48 hours here
    assert boss.get(link).status_code == 404
    assert boss.get(link.split("?")[0]).status_code == 200  # the page, expired
    assert g_shop.get(g_pending["id"]).get_json()["status"] == "pending_approval"


def test_the_approver_changes_the_lines_and_the_merchant_sees_them(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, company: dict[str, str]
) -> None:
    shop = Shop(client, token(app, client, merchant(app), company["worker"], company["berlin"]))
    after = len(smtp_server.messages)
    lines = [{"sku": "CH-1", "description": "Chair", "quantity": 10, "amount": "900.00"}]
    answer = shop.buy("900.00", lines=lines).get_json()
    link = _link(smtp_server, "boss@acme.example", after)
    boss = app.test_client()
    _sign_in(boss, smtp_server, "boss@acme.example")
    bad = _post(boss, link, action="change", lines="1", **{
        "line-0-description": "Chair", "line-0-quantity": "0", "line-0-amount": "1.00"})
    assert bad.status_code == 422  # type: ignore[attr-defined]
    resp = _post(boss, link, action="change", lines="1", amount="540.00", **{
        "line-0-description": "Chair", "line-0-sku": "CH-1", "line-0-quantity": "6",
        "line-0-amount": "540.00", "line-1-description": "Delivery",
        "line-1-quantity": "1", "line-1-amount": "0.50"})
    assert resp.status_code == 303  # type: ignore[attr-defined]
    got = shop.get(answer["id"]).get_json()
    assert got["status"] == "pending_approval" and got["amount"] == "540.00"
    assert got["lines"] == [
        {"sku": "CH-1", "description": "Chair", "quantity": 6, "amount": "540.00"},
        {"sku": None, "description": "Delivery", "quantity": 1, "amount": "0.50"}]
    # approving with the lines unchanged keeps them
    assert _post(boss, link, action="approve").status_code == 303  # type: ignore[attr-defined]
    final = shop.get(answer["id"]).get_json()
    assert final["status"] == "approved" and final["lines"] == got["lines"]


def test_the_sign_in_returns_to_the_link_but_never_elsewhere(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink
) -> None:
    with app.app_context():
        globex = units.create("Globex", slug="globex").id
    _cli(app, "approvals", "policy", "set", "--unit", "globex", "--currency", "EUR",
         "--step", "above=10.00,approvers=permission")
    gus = person(app, "gus@globex.example", globex, ["employee"])
    person(app, "gil@globex.example", globex, ["commercial_contact"])
    shop = Shop(client, token(app, client, merchant(app), gus, globex))
    after = len(smtp_server.messages)
    assert shop.buy("600.00").get_json()["status"] == "pending_approval"
    link = _link(smtp_server, "gil@globex.example", after)
    gil = app.test_client()
    assert _sign_in(gil, smtp_server, "gil@globex.example", start=link) == link
    assert gil.get(link).status_code == 200
    # the same through the dashboard's own ?next=: only its own paths (one person each,
    # the login's code limits apply per address)
    for i, (start, lands) in enumerate([
        ("//evil.example", "/account"), ("http://evil.example/account", "/account"),
        ("/account/approvals/x?a=1", "/account/approvals/x?a=1"),
    ]):
        email = f"p{i}@globex.example"
        person(app, email, globex, ["employee"])
        landed = _sign_in(app.test_client(), smtp_server, email,
                          start="/account?next=" + quote(start, safe=""))
        assert urlsplit(landed).netloc in ("", "localhost"), (start, landed)
        assert landed.removeprefix("http://localhost") == lands, (start, landed)


def test_safe_next_accepts_only_dashboard_paths() -> None:
    from idp.dashboard.views import safe_next

    for evil in ("//evil.example", "//evil.example/account", "http://evil.example/account",
                 "https://evil.example", "/\\evil.example", "/account/../..//evil.example",
                 "/account//evil.example", "javascript:alert(1)", "/accountx",
                 "/account\r\nLocation: http://evil.example", "/account/\\evil", "", None,
                 "/account/" + "a" * 3000, "/login", "account/approvals"):
        assert safe_next(evil) is None, evil
    for good in ("/account", "/account/approvals/ab?link=x.y", "/account?page=2"):
        assert safe_next(good) == good


def test_the_policy_by_api_with_validation_and_another_units_admin(
    app: Flask, client: FlaskClient, company: dict[str, str]
) -> None:
    acme, berlin = company["acme"], company["berlin"]
    with app.app_context():
        globex = units.create("Globex", slug="globex").id
    api = api_for(app, client, acme)
    path = f"/units/{acme}/approval-policy"
    got = api.get(path).get_json()
    assert got["unit_id"] == acme and got["inherited_from"] is None
    assert got["expiry_hours"] == 48 and got["currency"] == "EUR"
    sub = api.get(f"/units/{berlin}/approval-policy").get_json()
    assert sub["inherited_from"] == acme and sub["steps"] == got["steps"]
    # validation (the currency comes from the unit's budgets)
    assert_problem(api.call("PUT", path, json={"steps": [
        {"above": "5.00", "approvers": "manager"}]}), 422, "currency_required")
    api.post(f"/units/{acme}/budgets", json={
        "scope": "unit", "period": "year", "amount": "10000.00", "currency": "EUR"})
    assert_problem(api.call("PUT", path, json={"steps": [
        {"above": "500.00", "approvers": "manager"},
        {"above": "500.00", "approvers": "permission"}]}), 422, "thresholds_not_ascending")
    assert_problem(api.call("PUT", path, json={"steps": [
        {"above": "5.001", "approvers": "manager"}]}), 422, "invalid_amount")
    assert_problem(api.call("PUT", path, json={"steps": [
        {"above": "5.00", "approvers": "group:nobody"}]}), 422, "unknown_group")
    assert_problem(api.call("PUT", path, json={"steps": [
        {"above": "5.00", "approvers": "ceo"}]}), 422, "invalid_approvers")
    assert_problem(api.call("PUT", path, json={"steps": []}), 422)
    assert_problem(api.call("PUT", path, json={"currency": "USD", "steps": [
        {"above": "5.00", "approvers": "manager"}]}), 422, "currency_mismatch")
    put = api.call("PUT", path, json={"steps": [
        {"above": "0", "approvers": "group:approver"},
        {"above": "100", "approvers": "permission"}]})
    assert put.status_code == 200, put.get_data(as_text=True)
    assert put.get_json()["steps"] == [{"above": "0.00", "approvers": "group:approver"},
                                       {"above": "100.00", "approvers": "permission"}]
    assert put.get_json()["currency"] == "EUR" and put.get_json()["expiry_hours"] is None
    # another unit's admin: 404 for read, set and clear
    other = api_for(app, client, globex)
    assert_problem(other.get(path), 404)
    assert_problem(other.call("PUT", path, json={"steps": [
        {"above": "5.00", "approvers": "manager"}]}), 404)
    assert_problem(other.delete(path), 404)
    assert api.get(path).get_json()["steps"][1]["above"] == "100.00"
    # clear: the company has none, nor does the location
    assert api.delete(path).status_code == 204
    assert_problem(api.get(path), 404)
    assert_problem(api.get(f"/units/{berlin}/approval-policy"), 404)
    assert_problem(api.delete(path), 404)


def test_the_cli_refuses_malformed_steps(app: Flask) -> None:
    with app.app_context():
        units.create("Initech", slug="initech")
    for step, code in (("above=5", "invalid_step"), ("approvers=manager", "invalid_step"),
                       ("above=5.00,approvers=boss", "invalid_approvers"),
                       ("above=-5,approvers=manager", "invalid_amount")):
        res = app.test_cli_runner().invoke(main, [
            "approvals", "policy", "set", "--unit", "initech", "--currency", "EUR",
            "--step", step, "--json"])
        assert res.exit_code == 1 and json.loads(res.output)["error"] == code, (step, res.output)
    res = app.test_cli_runner().invoke(main, ["approvals", "policy", "show", "--unit",
                                              "initech", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"] == "not_found"
