"""The administration console's skeleton (``/admin``, issue 14): the browser session
as on the dashboard, the login returning to the console, the unit list and switcher,
and the one guard: another unit's pages answer 404, a missing permission 403 (in the
page's language)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.console import nav
from idp.login.common import safe_next
from idp.rights import staff
from idp.services import ephemeral
from idp.store.db import db
from idp.store.models import Unit
from tests.support.login import (
    code_from_outbox,
    csrf_token,
    path_of,
    submit_code,
    submit_email,
)
from tests.support.oidc import make_account, make_unit, start_session

ANN = "ann@corp.example"
BOB = "bob@corp.example"
EVE = "eve@other.example"


def signed_in(app: Flask, email: str) -> tuple[FlaskClient, str]:
    """A new browser with a live session of the account ``email`` (created if new)."""
    browser = app.test_client()
    account_id = make_account(app, email)
    start_session(app, browser, account_id)
    return browser, account_id


def test_without_a_session_the_console_starts_the_login_and_returns_to_it(
    app: Flask, client: FlaskClient
) -> None:
    web = client
    ann = make_account(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    resp = web.get(f"/admin/units/{corp}/accesses?status=active")
    assert resp.status_code == 303
    login = path_of(resp)
    assert login.startswith("/interaction/")
    with app.test_request_context("/"):
        data = ephemeral().get(f"ix:{login.split('/')[2]}")
    assert data is not None and data["protocol"] == "account"
    assert data["params"]["next"] == f"/admin/units/{corp}/accesses?status=active"
    submit_email(web, login, ANN)
    resp = submit_code(web, login, code_from_outbox(app, ANN))
    resume = web.get(resp.headers["Location"])
    assert resume.status_code == 303
    assert resume.headers["Location"] == f"/admin/units/{corp}/accesses?status=active"
    page = web.get(resume.headers["Location"])
    assert page.status_code == 200 and ANN in page.get_data(as_text=True)


def test_safe_next_accepts_console_paths_only_on_this_origin() -> None:
    for good in ("/admin", "/admin/", "/admin/units/abc/accesses?status=active"):
        assert safe_next(good) == good
    for evil in ("/adminx", "//evil.example/admin", "/admin//evil.example",
                 "https://evil.example/admin", "/admin/../login", "/admin\\evil"):
        assert safe_next(evil) is None, evil


def test_one_unit_goes_straight_to_it_and_its_first_page(app: Flask) -> None:
    browser, ann = signed_in(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    resp = browser.get("/admin/")
    assert resp.status_code == 303 and resp.headers["Location"] == f"/admin/units/{corp}/"
    resp = browser.get(resp.headers["Location"])
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/admin/units/{corp}/accesses"
    html = browser.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Corp GmbH" in html and 'href="#console-content"' in html
    assert 'aria-current="page"' in html
    assert browser.get("/admin").status_code == 308


def test_several_units_are_listed_with_a_switcher(app: Flask) -> None:
    browser, ann = signed_in(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    other = make_unit(app, ann, "Beta AG", roles=["commercial_contact"])
    make_unit(app, ann, "Shop Only", roles=["employee"])  # nothing to administer
    html = browser.get("/admin/").get_data(as_text=True)
    assert html.index("Beta AG") < html.index("Corp GmbH")
    assert "Shop Only" not in html and "/admin/operator/" not in html
    page = browser.get(f"/admin/units/{corp}/accesses").get_data(as_text=True)
    assert 'id="switch-unit"' in page and f'value="{other}"' in page
    resp = browser.get(f"/admin/switch?unit={other}")
    assert resp.status_code == 303 and resp.headers["Location"] == f"/admin/units/{other}/"
    assert browser.get("/admin/switch?unit=../x").headers["Location"] == "/admin/"


def test_another_units_admin_gets_404_and_an_employee_403_in_the_page_language(
    app: Flask,
) -> None:
    owner, ann = signed_in(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    stranger, eve = signed_in(app, EVE)
    make_unit(app, eve, "Other AG", roles=["main_user"])
    assert stranger.get(f"/admin/units/{corp}/accesses").status_code == 404
    assert stranger.get(f"/admin/units/{corp}/").status_code == 404
    assert stranger.get("/admin/units/nosuchunit/accesses").status_code == 404
    employee, bob = signed_in(app, BOB)
    from idp.accounts import accesses
    from idp.store.unit_of_work import atomic

    with app.app_context(), atomic():
        accesses.create(bob, corp, ["employee"], "test", event=None)
    resp = employee.get(f"/admin/units/{corp}/accesses")
    assert resp.status_code == 403
    assert "You cannot continue here" in resp.get_data(as_text=True)
    german = employee.get(f"/admin/units/{corp}/accesses", headers={"Accept-Language": "de"})
    assert german.status_code == 403 and 'lang="de"' in german.get_data(as_text=True)
    assert employee.get(f"/admin/units/{corp}/").status_code == 403
    # the employee administers nothing: the start page says so
    assert "You do not administer any unit" in employee.get("/admin/").get_data(as_text=True)
    assert owner.get(f"/admin/units/{corp}/accesses").status_code == 200


def test_staff_see_their_customers_and_the_operator_entry(app: Flask) -> None:
    _owner, ann = signed_in(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    browser, _ = signed_in(app, "sam@operator.example")
    with app.app_context():
        staff.add("sam@operator.example")
    html = browser.get("/admin/").get_data(as_text=True)
    assert "/admin/operator/" in html and "Corp GmbH" not in html
    assert browser.get(f"/admin/units/{corp}/accesses").status_code == 404
    with app.app_context():
        staff.assign("sam@operator.example", corp, "administrator")
    html = browser.get("/admin/").get_data(as_text=True)
    assert "/admin/operator/" in html and "Corp GmbH" in html
    assert browser.get(f"/admin/units/{corp}/accesses").status_code == 200


def test_nav_registry_orders_and_filters_by_permission() -> None:
    before = dict(nav._ENTRIES)
    try:
        nav.register("zz_test", "Test", "console.home", "audit.read", order=999)
        assert nav.entries()[-1].section_id == "zz_test"
        assert "zz_test" not in [e.section_id for e in nav.visible({"users.read"})]
        assert "zz_test" in [e.section_id for e in nav.visible({"audit.read"})]
        assert "audit.read" in nav.permissions_used()
        with pytest.raises(ValueError):
            nav.register("bad", "Bad", "console.home", "no.such.permission")
    finally:
        nav._ENTRIES.clear()
        nav._ENTRIES.update(before)


def test_a_post_without_a_session_changes_nothing_and_goes_to_the_start(
    app: Flask, client: FlaskClient
) -> None:
    ann = make_account(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    login = client.get("/admin/").headers["Location"]
    token = csrf_token(client.get(login).get_data(as_text=True))
    resp = client.post(f"/admin/units/{corp}/sub-units", data={"csrf_token": token,
                                                               "name": "Sneaky"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/"
    with app.app_context():
        assert db.session.query(Unit).filter_by(name="Sneaky").count() == 0
