"""The console's accesses pages (issue 14): the list with filters and keyset pages,
bulk actions, CSV export and import, inviting or linking a contact, one access's
roles, notifications, actions and "log in as", the roles and groups page and the
sub-units page; each with its authorisation (another unit's admin 404, an employee
403) and CSRF."""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError
from werkzeug.test import TestResponse

from idp.accounts import accesses, import_jobs
from idp.console.accesses import PAGE_SIZE
from idp.mail.outbox import courier
from idp.rights import groups as permission_groups
from idp.rights import staff
from idp.settings import Settings
from idp.store import imports_repo
from idp.store.db import db
from idp.store.leases import SENDING
from idp.store.models import Access, AccessImport, AuditEvent, Impersonation, Unit, utcnow
from idp.store.unit_of_work import atomic
from tests.support.concurrency import run_together
from tests.support.login import csrf_token
from tests.support.oidc import make_account, make_unit, start_session

ANN = "ann@corp.example"


def browser_of(app: Flask, account_id: str) -> FlaskClient:
    browser = app.test_client()
    start_session(app, browser, account_id)
    return browser


def give(app: Flask, account_id: str, unit_id: str, roles: list[str],
         status: str = "active") -> str:
    with app.app_context(), atomic():
        row = accesses.create(account_id, unit_id, roles, "test", event=None)
        row.status = status
    with app.app_context():
        found = db.session.query(Access).filter_by(account_id=account_id, unit_id=unit_id).one()
        return found.id


@pytest.fixture
def corp(app: Flask) -> dict[str, Any]:
    """Corp GmbH with its main user Ann (signed in), Bob an employee, Cleo invited."""
    ann = make_account(app, ANN)
    unit = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    bob = make_account(app, "bob@corp.example", given_name="Bob", family_name="Baker")
    cleo = make_account(app, "cleo@corp.example", given_name="Cleo", family_name="Cook")
    return {
        "unit": unit, "ann": ann, "bob": bob, "cleo": cleo,
        "bob_access": give(app, bob, unit, ["employee"]),
        "cleo_access": give(app, cleo, unit, ["operational_contact"], "invited"),
        "web": browser_of(app, ann),
    }


def form_post(web: FlaskClient, page: str, action: str, data: dict[str, Any],
              **kwargs: Any) -> TestResponse:
    """POST ``data`` to ``action`` with the CSRF token of ``page``."""
    token = csrf_token(web.get(page).get_data(as_text=True))
    return web.post(action, data={"csrf_token": token, **data}, **kwargs)


def status_of(app: Flask, access_id: str) -> str | None:
    with app.app_context():
        row = db.session.get(Access, access_id)
        return None if row is None else row.status


def test_the_list_filters_and_pages_by_keyset(app: Flask, corp: dict[str, Any]) -> None:
    web, unit = corp["web"], corp["unit"]
    base = f"/admin/units/{unit}/accesses"
    html = web.get(base).get_data(as_text=True)
    assert "bob@corp.example" in html and "cleo@corp.example" in html and ANN in html
    assert 'name="csrf_token"' in html and 'name="ids"' in html
    only = web.get(base + "?status=invited").get_data(as_text=True)
    assert "cleo@corp.example" in only and "bob@corp.example" not in only
    by_role = web.get(base + "?role=employee").get_data(as_text=True)
    assert "bob@corp.example" in by_role and "cleo@corp.example" not in by_role
    by_text = web.get(base + "?q=Cle").get_data(as_text=True)
    assert "cleo@corp.example" in by_text and "bob@corp.example" not in by_text
    ignored = web.get(base + "?status=bogus&role=nope").get_data(as_text=True)
    assert "bob@corp.example" in ignored
    for i in range(PAGE_SIZE + 5):
        give(app, make_account(app, f"p{i:03d}@corp.example"), unit, ["employee"])
    first = web.get(base).get_data(as_text=True)
    assert first.count('name="ids"') == PAGE_SIZE and 'rel="next"' in first
    nxt = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = web.get(nxt).get_data(as_text=True)
    assert second.count('name="ids"') == 3 + PAGE_SIZE + 5 - PAGE_SIZE
    assert 'rel="next"' not in second
    firsts = {line for line in first.split() if 'value="' in line and "ids" in line}
    assert not firsts & {line for line in second.split() if 'value="' in line}


def test_bulk_actions_with_confirmation_for_removal(app: Flask, corp: dict[str, Any]) -> None:
    web, unit = corp["web"], corp["unit"]
    page = f"/admin/units/{unit}/accesses"
    action = f"/admin/units/{unit}/accesses/bulk"
    ids = [corp["bob_access"], corp["cleo_access"]]
    resp = form_post(web, page, action, {"action": "suspend", "ids": ids})
    assert resp.status_code == 303 and resp.headers["Location"].startswith(page)
    assert status_of(app, corp["bob_access"]) == "suspended"
    assert "Done: 2." in web.get(page).get_data(as_text=True)
    form_post(web, page, action, {"action": "reactivate", "ids": ids})
    assert status_of(app, corp["bob_access"]) == "active"
    resp = form_post(web, page, action, {"action": "remove", "ids": [corp["bob_access"]]})
    assert status_of(app, corp["bob_access"]) == "active"  # no confirmation: nothing
    assert "Tick the box to confirm." in web.get(page).get_data(as_text=True)
    form_post(web, page, action, {"action": "remove", "ids": [corp["bob_access"]],
                                  "confirm": "yes"})
    assert status_of(app, corp["bob_access"]) in ("removed", None)
    # the last main user stays one, whatever is ticked
    with app.app_context():
        own = db.session.query(Access).filter_by(account_id=corp["ann"], unit_id=unit).one().id
    form_post(web, page, action, {"action": "suspend", "ids": [own]})
    assert status_of(app, own) == "active"
    assert "last main user" in web.get(page).get_data(as_text=True)
    assert form_post(web, page, action, {"action": "nope", "ids": ids}).status_code == 303


def test_csrf_is_required_on_every_console_form(app: Flask, corp: dict[str, Any]) -> None:
    web, unit = corp["web"], corp["unit"]
    for path, data in (
        (f"/admin/units/{unit}/accesses/bulk", {"action": "suspend", "ids": corp["bob_access"]}),
        (f"/admin/units/{unit}/accesses/invite", {"email": "new@corp.example"}),
        (f"/admin/units/{unit}/accesses/{corp['bob_access']}/action", {"action": "suspend"}),
        (f"/admin/units/{unit}/groups", {"name": "buyers"}),
        (f"/admin/units/{unit}/sub-units", {"name": "Sales"}),
    ):
        resp = web.post(path, data=data)
        assert resp.status_code == 400, path
        assert "This form has expired" in resp.get_data(as_text=True)
    assert status_of(app, corp["bob_access"]) == "active"


def test_another_units_admin_gets_404_and_an_employee_403_on_every_page(
    app: Flask, corp: dict[str, Any]
) -> None:
    unit, bob_access = corp["unit"], corp["bob_access"]
    eve = make_account(app, "eve@other.example")
    make_unit(app, eve, "Other AG", roles=["main_user"])
    stranger = browser_of(app, eve)
    employee = browser_of(app, corp["bob"])
    own = f"/admin/units/{unit}"
    gets = [f"{own}/accesses", f"{own}/accesses/{bob_access}", f"{own}/accesses/export.csv",
            f"{own}/groups", f"{own}/sub-units"]
    posts = [f"{own}/accesses/bulk", f"{own}/accesses/invite", f"{own}/accesses/import",
             f"{own}/accesses/{bob_access}/settings", f"{own}/accesses/{bob_access}/action",
             f"{own}/accesses/{bob_access}/impersonate", f"{own}/groups",
             f"{own}/groups/remove", f"{own}/sub-units"]
    for browser, status in ((stranger, 404), (employee, 403)):
        token = csrf_token(browser.get("/account").get_data(as_text=True))
        for path in gets:
            assert browser.get(path).status_code == status, (path, status)
        for path in posts:
            resp = browser.post(path, data={"csrf_token": token, "action": "suspend",
                                            "ids": bob_access, "name": "x", "reason": "r"})
            assert resp.status_code == status, (path, status)
    assert status_of(app, bob_access) == "active"
    # an access of another unit under this unit's URL: 404 for its own admin too
    other = give(app, eve, corp["unit"], ["employee"])
    assert corp["web"].get(f"{own}/accesses/{other}").status_code == 200
    assert corp["web"].get(f"{own}/accesses/nosuch").status_code == 404


def test_invite_a_new_contact_or_link_a_known_person(app: Flask, corp: dict[str, Any]) -> None:
    web, unit = corp["web"], corp["unit"]
    page = f"/admin/units/{unit}/accesses"
    action = f"{page}/invite"
    resp = form_post(web, page, action, {
        "email": "dora@corp.example", "given_name": "Dora", "family_name": "Diaz",
        "roles": ["commercial_contact"], "platform_access": "yes",
    })
    assert resp.status_code == 303
    html = web.get(page).get_data(as_text=True)
    assert "dora@corp.example was invited." in html and "Dora Diaz" in html
    with app.app_context():
        row = db.session.query(Access).join(Access.account).filter_by(
            email="dora@corp.example").one()
        assert row.status == "invited" and row.roles == ["commercial_contact"]
    courier(app).drain()
    # a wrong address: the error summary links to the field, the values stay
    form_post(web, page, action, {"email": "not-an-address", "given_name": "X",
                                  "family_name": "Y", "platform_access": "yes"})
    html = web.get(page).get_data(as_text=True)
    assert 'href="#email"' in html and 'value="not-an-address"' in html
    # someone the admin sees in another of their units is linked, not invited again
    beta = make_unit(app, corp["ann"], "Beta AG", roles=["main_user"])
    fay = make_account(app, "fay@beta.example")
    give(app, fay, beta, ["employee"])
    form_post(web, page, action, {"email": "fay@beta.example", "roles": ["employee"],
                                  "platform_access": "yes"})
    assert "already had an account and was linked" in web.get(page).get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Access).filter_by(account_id=fay, unit_id=unit).one().status \
            == "active"
    # a stranger's address is not linked
    make_account(app, "gus@elsewhere.example")
    form_post(web, page, action, {"email": "gus@elsewhere.example", "given_name": "Gus",
                                  "family_name": "Gray", "platform_access": "yes"})
    assert "belongs to someone outside your units" in web.get(page).get_data(as_text=True)
    # nobody hands out more than they hold: an operational contact makes no main user
    lead = make_account(app, "lead@corp.example")
    give(app, lead, unit, ["main_user"])
    with app.app_context():
        permission_groups.set_group(unit, "hr", ["users.read", "users.manage"])
    hr = make_account(app, "hr@corp.example")
    give(app, hr, unit, ["hr"])
    hr_web = browser_of(app, hr)
    form_post(hr_web, page, action, {"email": "boss@corp.example", "given_name": "B",
                                     "family_name": "C", "roles": ["main_user"],
                                     "platform_access": "yes"})
    assert "rights you do not hold" in hr_web.get(page).get_data(as_text=True)


def test_one_access_roles_notifications_and_actions(app: Flask, corp: dict[str, Any]) -> None:
    web, unit, bob_access = corp["web"], corp["unit"], corp["bob_access"]
    page = f"/admin/units/{unit}/accesses/{bob_access}"
    html = web.get(page).get_data(as_text=True)
    assert "Bob Baker" in html and "bob@corp.example" in html and "Reset the password" not in html
    resp = form_post(web, page, f"{page}/settings", {
        "roles": ["operational_contact"], "platform_access": "yes",
        "events": ["order.placed", "invoice.issued"],
    })
    assert resp.status_code == 303 and resp.headers["Location"] == page
    with app.app_context():
        row = db.session.get(Access, bob_access)
        assert row is not None and row.roles == ["operational_contact"]
        assert row.notifications == ["order.placed", "invoice.issued"]
    assert "Saved." in web.get(page).get_data(as_text=True)
    form_post(web, page, f"{page}/settings", {"roles": ["operational_contact"],
                                              "platform_access": "yes", "default_events": "yes"})
    with app.app_context():
        row = db.session.get(Access, bob_access)
        assert row is not None and row.notifications is None
    form_post(web, page, f"{page}/action", {"action": "suspend"})
    assert status_of(app, bob_access) == "suspended"
    assert "Suspended." in web.get(page).get_data(as_text=True)
    form_post(web, page, f"{page}/action", {"action": "reactivate"})
    assert status_of(app, bob_access) == "active"
    # the password reset, where the unit allows passwords
    with app.app_context():
        found = db.session.get(Unit, unit)
        assert found is not None
        found.passwords_allowed = True
        db.session.commit()
    assert "Reset the password" in web.get(page).get_data(as_text=True)
    form_post(web, page, f"{page}/action", {"action": "reset_password"})
    html = web.get(page).get_data(as_text=True)
    assert "A new password was sent" in html and "Reset by an administrator" in html
    courier(app).drain()
    # removal needs its confirmation
    form_post(web, page, f"{page}/action", {"action": "remove"})
    assert status_of(app, bob_access) == "active"
    resp = form_post(web, page, f"{page}/action", {"action": "remove", "confirm": "yes"})
    assert resp.headers["Location"] == f"/admin/units/{unit}/accesses"
    assert status_of(app, bob_access) in ("removed", None)
    # the demoting of the last main user is refused with its reason
    with app.app_context():
        own = db.session.query(Access).filter_by(account_id=corp["ann"], unit_id=unit).one().id
    mine = f"/admin/units/{unit}/accesses/{own}"
    form_post(web, mine, f"{mine}/settings", {"roles": ["employee"], "platform_access": "yes"})
    assert "last main user" in web.get(mine).get_data(as_text=True)


def test_log_in_as_needs_a_reason_and_the_permission(app: Flask, corp: dict[str, Any]) -> None:
    unit, bob_access = corp["unit"], corp["bob_access"]
    page = f"/admin/units/{unit}/accesses/{bob_access}"
    # a main user does not hold impersonate: no form, and the action is refused
    assert "Log in as" not in corp["web"].get(page).get_data(as_text=True)
    resp = form_post(corp["web"], page, f"{page}/impersonate", {"reason": "help"})
    assert resp.status_code == 403
    sam = make_account(app, "sam@operator.example")
    with app.app_context():
        staff.add("sam@operator.example")
        staff.assign("sam@operator.example", unit, "administrator")
    web = browser_of(app, sam)
    assert "Log in as Bob Baker" in web.get(page).get_data(as_text=True)
    form_post(web, page, f"{page}/impersonate", {"reason": "   "})
    assert "Give a reason" in web.get(page).get_data(as_text=True)
    resp = form_post(web, page, f"{page}/impersonate", {"reason": "Ticket 42: order fails"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    banner = web.get("/account").get_data(as_text=True)
    assert "are acting as" in banner and "Bob" in banner
    with app.app_context():
        row = db.session.query(Impersonation).one()
        assert row.reason == "Ticket 42: order fails" and row.target_account_id == corp["bob"]
    # administering while acting as someone is refused
    assert web.get("/admin/").status_code == 403
    courier(app).drain()


def test_csv_export_and_import_through_the_page(app: Flask, corp: dict[str, Any]) -> None:
    web, unit = corp["web"], corp["unit"]
    page = f"/admin/units/{unit}/accesses"
    resp = web.get(f"{page}/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert {r["email"] for r in rows} == {ANN, "bob@corp.example", "cleo@corp.example"}
    only = web.get(f"{page}/export.csv?status=invited&dialect=excel-de").get_data(as_text=True)
    assert "cleo@corp.example" in only and "bob@corp.example" not in only and ";" in only
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="accesses.exported").count() == 2
    text = ("email,given_name,family_name,roles,platform_access\n"
            "hal@corp.example,Hal,Hill,employee,false\n"
            "broken-address,Ivy,Ito,employee,false\n")
    upload = {"file": (io.BytesIO(text.encode()), "people.csv"), "dry_run": "yes"}
    resp = form_post(web, page, f"{page}/import", upload, content_type="multipart/form-data")
    assert resp.status_code == 303 and "/accesses/imports/" in resp.headers["Location"]
    assert import_jobs.run_due(app) == 1
    html = web.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Import result" in html and "check only" in html and "broken-address" in html
    assert "hal@corp.example" not in web.get(page).get_data(as_text=True)  # nothing written
    upload = {"file": (io.BytesIO(text.encode()), "people.csv")}
    resp = form_post(web, page, f"{page}/import", upload, content_type="multipart/form-data")
    import_jobs.run_due(app)
    html = web.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Import result" in html and "broken-address" in html
    assert "hal@corp.example" in web.get(page).get_data(as_text=True)  # in the list now
    form_post(web, page, f"{page}/import", {}, content_type="multipart/form-data")
    assert "Choose a CSV file." in web.get(page).get_data(as_text=True)
    # a file that is not the import's CSV is refused on the form, nothing queued
    upload = {"file": (io.BytesIO(b"name,colour\nx,y\n"), "bad.csv")}
    resp = form_post(web, page, f"{page}/import", upload, content_type="multipart/form-data")
    assert resp.headers["Location"].endswith("#import")
    assert "is not a column" in web.get(page).get_data(as_text=True)
    with app.app_context():
        assert db.session.query(AccessImport).count() == 2
    # an export permission alone shows the link, not the forms
    courier(app).drain()


def test_an_import_runs_in_the_background_with_a_progress_page(
    app: Flask, corp: dict[str, Any]
) -> None:
    """The upload answers at once with the progress page (0 of 3 rows, refreshing
    itself); a worker step runs it exactly once; then the page shows the report
    and stops refreshing. Another unit's admin gets 404, an employee 403, a POST
    without the CSRF token 400 and queues nothing."""
    web, unit = corp["web"], corp["unit"]
    page = f"/admin/units/{unit}/accesses"
    text = ("email,given_name,family_name,roles,platform_access\n"
            "kim@corp.example,Kim,Kuhn,employee,false\n"
            "\n"
            "no-address,Lu,Lang,employee,false\n"
            "bob@corp.example,Bob,Baker,employee,yes\n")
    upload = {"file": (io.BytesIO(text.encode()), "people.csv")}
    resp = form_post(web, page, f"{page}/import", upload, content_type="multipart/form-data")
    assert resp.status_code == 303
    progress = resp.headers["Location"]
    waiting = web.get(progress)
    html = waiting.get_data(as_text=True)
    assert waiting.status_code == 200 and waiting.headers["Cache-Control"] == "no-store"
    assert "0 of 3 rows done." in html and '<meta http-equiv="refresh" content="2">' in html
    assert "Waiting to start" in html and "Import result" not in html
    german = web.get(progress, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "0 von 3 Zeilen erledigt." in german and "Wartet auf den Start" in german
    assert "refresh" not in waiting.headers.get("Content-Security-Policy", "")
    with app.app_context():
        assert db.session.query(Access).join(Access.account).filter_by(
            email="kim@corp.example").count() == 0  # not in the request
    # another unit's admin: 404 (also under their own unit's URL); an employee: 403
    eve = make_account(app, "eve@other.example")
    other = make_unit(app, eve, "Other AG", roles=["main_user"])
    stranger = browser_of(app, eve)
    import_id = progress.rsplit("/", 1)[1]
    assert stranger.get(progress).status_code == 404
    assert stranger.get(f"/admin/units/{other}/accesses/imports/{import_id}").status_code == 404
    assert browser_of(app, corp["bob"]).get(progress).status_code == 403
    assert web.get(f"{page}/imports/nosuch").status_code == 404
    # the worker step: one claim wins, a second step finds nothing
    assert import_jobs.run_due(app) == 1
    assert import_jobs.run_due(app) == 0
    done = web.get(progress).get_data(as_text=True)
    assert "3 of 3 rows done." in done and "Finished" in done and "Import result" in done
    assert "no-address" in done and 'http-equiv="refresh"' not in done
    with app.app_context():
        row = db.session.get(AccessImport, import_id)
        assert row is not None and row.data is None and row.status == "sent"
        assert row.report is not None and row.report["counts"]["created"] == 1
        assert db.session.query(AuditEvent).filter_by(action="accesses.imported").count() == 1
    # without the CSRF token: 400, nothing queued
    before = _imports(app)
    bad = web.post(f"{page}/import", data={"file": (io.BytesIO(text.encode()), "p.csv")},
                   content_type="multipart/form-data")
    assert bad.status_code == 400 and _imports(app) == before
    courier(app).drain()


def test_an_import_runs_with_the_uploaders_rights_when_it_runs(
    app: Flask, corp: dict[str, Any]
) -> None:
    """The import acts as the person who uploaded it, checked again when it runs:
    once their access is suspended nothing is imported, and another admin of the
    unit sees why on the progress page."""
    web, unit = corp["web"], corp["unit"]
    page = f"/admin/units/{unit}/accesses"
    zoe = make_account(app, "zoe@corp.example")
    give(app, zoe, unit, ["main_user"])
    text = "email,given_name,family_name,platform_access\nned@corp.example,Ned,Noll,no\n"
    upload = {"file": (io.BytesIO(text.encode()), "people.csv")}
    resp = form_post(web, page, f"{page}/import", upload, content_type="multipart/form-data")
    progress = resp.headers["Location"]
    with app.app_context(), atomic():
        db.session.query(Access).filter_by(account_id=corp["ann"], unit_id=unit).update(
            {"status": "suspended"})
    assert import_jobs.run_due(app) == 1
    html = browser_of(app, zoe).get(progress).get_data(as_text=True)
    assert "may no longer manage" in html and "Finished" in html
    assert "ned@corp.example" not in browser_of(app, zoe).get(page).get_data(as_text=True)


def _imports(app: Flask) -> int:
    with app.app_context():
        return db.session.query(AccessImport).count()


def test_an_import_whose_node_died_is_run_by_another_once_its_lease_ran_out(
    app: Flask, corp: dict[str, Any]
) -> None:
    """A node claimed the import and died: nobody else takes it while the lease
    holds; afterwards another node runs it to its end, and the dead node's late
    progress is refused (it no longer holds the lease)."""
    web, unit = corp["web"], corp["unit"]
    page = f"/admin/units/{unit}/accesses"
    text = "email,given_name,family_name,platform_access\nmia@corp.example,Mia,Marx,no\n"
    upload = {"file": (io.BytesIO(text.encode()), "people.csv"), "dry_run": "yes"}
    resp = form_post(web, page, f"{page}/import", upload, content_type="multipart/form-data")
    import_id = resp.headers["Location"].rsplit("/", 1)[1]
    now = utcnow()
    with app.app_context():
        (dead,) = imports_repo.claim_due(now, 1, import_jobs.LEASE)
        assert dead.status == SENDING
    assert "Running" in web.get(resp.headers["Location"]).get_data(as_text=True)
    assert import_jobs.run_due(app) == 0  # the lease holds
    later = now + import_jobs.LEASE + import_jobs.LEASE
    assert import_jobs.run_due(app, now=later) == 1
    with app.app_context():
        row = db.session.get(AccessImport, import_id)
        assert row is not None and row.status == "sent" and row.attempts == 1
        assert row.report is not None and row.report["dry_run"] is True
        with atomic():
            assert not imports_repo.update_claimed(import_id, dead.next_attempt_at,
                                                   {"rows_done": 0})
    html = web.get(resp.headers["Location"]).get_data(as_text=True)
    assert "1 of 1 rows done." in html and "check only" in html
    courier(app).drain()


def test_groups_and_sub_units(app: Flask, corp: dict[str, Any]) -> None:
    web, unit = corp["web"], corp["unit"]
    page = f"/admin/units/{unit}/groups"
    html = web.get(page).get_data(as_text=True)
    assert "Main user" in html and "users.manage" in html
    resp = form_post(web, page, page, {"name": "buyers",
                                       "permissions": ["orders.create", "documents.read"]})
    assert resp.status_code == 303
    assert "buyers" in web.get(page).get_data(as_text=True)
    form_post(web, page, page, {"name": "buyers", "permissions": ["orders.create"]})
    with app.app_context():
        assert [g.permissions for g in permission_groups.list_groups(unit)] == [["orders.create"]]
    form_post(web, page, page, {"name": "Main User!", "permissions": []})
    assert 'href="#name"' in web.get(page).get_data(as_text=True)
    give(app, make_account(app, "jo@corp.example"), unit, ["buyers"])
    form_post(web, page, f"{page}/remove", {"name": "buyers"})
    assert "Members still hold" in web.get(page).get_data(as_text=True)
    form_post(web, page, page, {"name": "spare", "permissions": ["audit.read"]})
    form_post(web, page, f"{page}/remove", {"name": "spare"})
    with app.app_context():
        assert [g.name for g in permission_groups.list_groups(unit)] == ["buyers"]
    subs = f"/admin/units/{unit}/sub-units"
    assert "has no sub-units" in web.get(subs).get_data(as_text=True)
    form_post(web, subs, subs, {"name": "Sales"})
    html = web.get(subs).get_data(as_text=True)
    assert "The sub-unit Sales was created." in html
    with app.app_context():
        sales = db.session.query(Unit).filter_by(name="Sales").one()
        assert sales.parent_id == unit
    assert web.get(f"/admin/units/{sales.id}/accesses").status_code == 200  # inherited
    form_post(web, subs, subs, {"name": " "})
    assert 'href="#name"' in web.get(subs).get_data(as_text=True)
    # the sub-unit's own main user sees neither the parent nor its siblings
    kim = make_account(app, "kim@corp.example")
    give(app, kim, sales.id, ["main_user"])
    kim_web = browser_of(app, kim)
    assert kim_web.get(f"/admin/units/{unit}/accesses").status_code == 404
    assert kim_web.get(f"/admin/units/{sales.id}/accesses").status_code == 200


def test_pages_speak_german(app: Flask, corp: dict[str, Any]) -> None:
    web, unit = corp["web"], corp["unit"]
    for path in (f"/admin/units/{unit}/accesses", f"/admin/units/{unit}/groups",
                 f"/admin/units/{unit}/sub-units",
                 f"/admin/units/{unit}/accesses/{corp['bob_access']}"):
        html = web.get(path, headers={"Accept-Language": "de"}).get_data(as_text=True)
        assert 'lang="de"' in html and "Verwaltung" in html, path
        for english in ("Accesses", "Export as CSV", "Invite or link", "Roles and groups",
                        "Sub-units", "Save", "Remove", "Permissions", "Skip to content",
                        "Last sign-in", "Create a sub-unit", "Name or e-mail"):
            assert f">{english}<" not in html and f">{english} " not in html, (path, english)


# --- Retention of finished imports (IDP_CSV_IMPORT_RETENTION_DAYS) ---


def _upload(web: FlaskClient, unit: str, email: str) -> str:
    """Upload a one-row import (check only); the path of its progress page."""
    page = f"/admin/units/{unit}/accesses"
    text = f"email,given_name,family_name,platform_access\n{email},Al,Ash,no\n"
    upload = {"file": (io.BytesIO(text.encode()), "people.csv"), "dry_run": "yes"}
    resp = form_post(web, page, f"{page}/import", upload, content_type="multipart/form-data")
    assert resp.status_code == 303
    return str(resp.headers["Location"])


def _pruned_events(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.query(AuditEvent).filter_by(action=import_jobs.PRUNED))


def test_finished_imports_are_deleted_after_the_retention_and_their_page_answers_404(
    app: Flask, corp: dict[str, Any]
) -> None:
    """An import that finished (sent, or dead: given up) is kept
    IDP_CSV_IMPORT_RETENTION_DAYS (30) after it finished; then :func:`prune` deletes
    it with an audit event, and its progress page answers a console 404 that says
    why (English and German), never a 500. An import not yet run is never deleted,
    however old; a second prune finds nothing (idempotent)."""
    web, unit = corp["web"], corp["unit"]
    sent = _upload(web, unit, "sal@corp.example")
    assert import_jobs.run_due(app) == 1
    dead = _upload(web, unit, "dee@corp.example")
    dead_id = dead.rsplit("/", 1)[1]
    with app.app_context(), atomic():  # as after MAX_ATTEMPTS claims by dying nodes
        db.session.query(AccessImport).filter_by(id=dead_id).update(
            {"attempts": import_jobs.MAX_ATTEMPTS})
    assert import_jobs.run_due(app) == 1
    waiting = _upload(web, unit, "wim@corp.example")
    with app.app_context():
        assert db.session.get(AccessImport, dead_id).status == "dead"  # type: ignore[union-attr]
    assert import_jobs.prune(app, utcnow() + timedelta(days=29)) == 0
    assert web.get(sent).status_code == 200 and web.get(dead).status_code == 200
    assert import_jobs.prune(app, utcnow() + timedelta(days=31)) == 2
    for path in (sent, dead):
        gone = web.get(path)
        html = gone.get_data(as_text=True)
        assert gone.status_code == 404 and gone.headers["Cache-Control"] == "no-store"
        assert "This import does not exist (any more)" in html and "30 days" in html
        assert f"/admin/units/{unit}/accesses" in html  # the way back
    german = web.get(sent, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Diesen Import gibt es nicht (mehr)" in german and "30 Tage" in german
    # the import not yet run stays, and still runs
    assert "Waiting to start" in web.get(waiting).get_data(as_text=True)
    assert import_jobs.prune(app, utcnow() + timedelta(days=3650)) == 0
    assert import_jobs.run_due(app) == 1
    assert "Finished" in web.get(waiting).get_data(as_text=True)
    # each deleted import once in the audit, as the system, in its unit
    events = _pruned_events(app)
    assert sorted(e.target for e in events) == sorted([sent.rsplit("/", 1)[1], dead_id])
    assert {e.unit_id for e in events} == {unit} and {e.actor for e in events} == {
        "system:retention"}
    assert {e.details["status"] for e in events} == {"sent", "dead"}
    with app.app_context():
        assert db.session.query(AccessImport).count() == 1


class TestAShorterRetention:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"csv_import_retention_days": 2}

    def test_the_setting_decides_how_long_and_the_page_says_it(
        self, app: Flask, corp: dict[str, Any]
    ) -> None:
        web, unit = corp["web"], corp["unit"]
        done = _upload(web, unit, "sue@corp.example")
        assert import_jobs.run_due(app) == 1
        assert import_jobs.prune(app, utcnow() + timedelta(days=1)) == 0
        assert import_jobs.prune(app, utcnow() + timedelta(days=3)) == 1
        html = web.get(done).get_data(as_text=True)
        assert "deleted with their report 2 days after" in html


def test_prune_deletes_in_bounded_batches_oldest_first(
    app: Flask, corp: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One prune deletes at most PRUNE_BATCH imports (one short transaction), the
    longest finished first; the next runs take the rest."""
    web, unit = corp["web"], corp["unit"]
    paths = []
    for n in range(3):
        paths.append(_upload(web, unit, f"b{n}@corp.example"))
        assert import_jobs.run_due(app) == 1
    monkeypatch.setattr(import_jobs, "PRUNE_BATCH", 2)
    later = utcnow() + timedelta(days=31)
    assert import_jobs.prune(app, later) == 2
    assert [web.get(p).status_code for p in paths] == [404, 404, 200]
    assert import_jobs.prune(app, later) == 1
    assert import_jobs.prune(app, later) == 0
    assert len(_pruned_events(app)) == 3


def test_prune_on_several_nodes_at_once_deletes_and_audits_each_import_once(
    app: Flask, corp: dict[str, Any]
) -> None:
    web, unit = corp["web"], corp["unit"]
    for n in range(6):
        _upload(web, unit, f"n{n}@corp.example")
    assert import_jobs.run_due(app, limit=6) == 6
    later = utcnow() + timedelta(days=31)
    counts: list[int] = []
    run_together(*[lambda: counts.append(import_jobs.prune(app, later))] * 3)
    assert sum(counts) == 6 and len(_pruned_events(app)) == 6
    assert _imports(app) == 0


def test_the_imports_loop_prunes_at_its_first_step(app: Flask, corp: dict[str, Any]) -> None:
    """The workers' ``access-imports`` loop (:func:`import_jobs.start_thread`, which
    ``idp serve`` and idp.wsgi start) deletes expired imports, at once after start
    rather than an hour later."""
    web, unit = corp["web"], corp["unit"]
    path = _upload(web, unit, "lou@corp.example")
    assert import_jobs.run_due(app) == 1
    with app.app_context(), atomic():  # finished long ago
        db.session.query(AccessImport).update(
            {"finished_at": utcnow() - timedelta(days=31)})
    worker = import_jobs.start_thread(app, interval=0.1)
    try:
        deadline = time.monotonic() + 20
        while _imports(app) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
    assert _imports(app) == 0 and web.get(path).status_code == 404


def test_the_retention_setting_is_a_positive_number_of_days(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().csv_import_retention_days == 30
    monkeypatch.setenv("IDP_CSV_IMPORT_RETENTION_DAYS", "7")
    assert Settings().csv_import_retention_days == 7
    for wrong in ("0", "-1", "1.5", "soon", "3651"):
        monkeypatch.setenv("IDP_CSV_IMPORT_RETENTION_DAYS", wrong)
        with pytest.raises(ValidationError):
            Settings()
