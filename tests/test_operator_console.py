"""The operator console (``/admin/operator/``, issue 14 item 2) through HTTP: who
reaches it (staff only; a main user gets 404; an assigned staff member sees only
the customers assigned; platform staff, ``IDP_PLATFORM_STAFF``, all of them), the
filter bar and CSV export, creating a company and going on to its first contact,
the contacts tab, the authorisations view with removal, staff assignments, the
merchants, "send access details", CSRF and 303, and German."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.accounts import accesses
from idp.mail.outbox import courier
from idp.rights import staff
from idp.rights.authorization import Actor, may, visible_customers
from idp.store.db import db
from idp.store.models import Access, AccessInvitation, AuditEvent, Unit
from idp.store.unit_of_work import atomic
from idp.units import customers
from tests.support.login import csrf_token
from tests.support.oidc import make_account, register, start_session

OPS = "ops@operator.example"  # platform staff
SAM = "sam@operator.example"  # staff assigned to ACME only
MIA = "mia@acme.example"  # ACME's main user


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"platform_staff": f" {OPS.upper()} , nobody@operator.example"}


def world(app: Flask) -> dict[str, str]:
    ids: dict[str, str] = {}
    with app.app_context():
        ids["acme"] = customers.create("company", {"name": "ACME", "vat_id": "DE123456789"}).id
        ids["globex"] = customers.create("company", {"name": "Globex"}).id
        ids["pat"] = customers.create("person", {"given_name": "Pat",
                                                 "family_name": "=Formula"}).id
    for email in (OPS, SAM, MIA):
        ids[email] = make_account(app, email)
    with app.app_context():
        staff.add(OPS)
        staff.add(SAM)
        staff.assign(SAM, ids["acme"], "administrator")
        with atomic():
            ids["mia_access"] = accesses.create(ids[MIA], ids["acme"], ["main_user"], "test",
                                                event=None).id
    return ids


def browser(app: Flask, account_id: str) -> FlaskClient:
    web = app.test_client()
    start_session(app, web, account_id)
    return web


def post(web: FlaskClient, page: str, action: str, data: dict[str, Any]) -> Any:
    """POST ``data`` to ``action`` with the CSRF token of the page ``page``."""
    token = csrf_token(web.get(page).get_data(as_text=True))
    return web.post(action, data={"csrf_token": token, **data})


def test_platform_staff_are_named_staff_members_only(app: Flask) -> None:
    ids = world(app)
    with app.app_context():
        ops, sam = Actor.staff(ids[OPS]), Actor.staff(ids[SAM])
        assert visible_customers(ops) is None
        assert visible_customers(sam) == {ids["acme"]}
        assert may(ops, "units.manage", None) and may(ops, "users.manage", ids["globex"])
        assert not may(sam, "units.manage", None)
        assert not may(sam, "users.read", ids["globex"])
        # the same address in its capacity as an account holds nothing platform-wide
        assert not may(Actor.account(ids[OPS]), "units.manage", None)
        staff.remove(OPS)  # no longer staff: the setting alone gives nothing
        assert visible_customers(Actor.staff(ids[OPS])) == set()
        assert not may(Actor.staff(ids[OPS]), "units.manage", None)


def test_a_main_user_gets_404_everywhere_in_the_operator_console(app: Flask) -> None:
    ids = world(app)
    web = browser(app, ids[MIA])
    for path in ("/admin/operator/", "/admin/operator/customers.csv",
                 "/admin/operator/customers/new", f"/admin/operator/customers/{ids['acme']}",
                 f"/admin/operator/customers/{ids['acme']}/contacts",
                 f"/admin/operator/customers/{ids['acme']}/authorisations",
                 "/admin/operator/staff", "/admin/operator/merchants"):
        assert web.get(path).status_code == 404, path
    token = csrf_token(web.get("/account").get_data(as_text=True))
    resp = web.post("/admin/operator/customers/new",
                    data={"csrf_token": token, "kind": "company", "name": "Sneaky"})
    assert resp.status_code == 404
    with app.app_context():
        assert db.session.scalars(select(Unit).where(Unit.name == "Sneaky")).first() is None


def test_assigned_staff_see_only_their_customers_and_no_operator_powers(app: Flask) -> None:
    ids = world(app)
    web = browser(app, ids[SAM])
    html = web.get("/admin/operator/").get_data(as_text=True)
    assert "ACME" in html and "Globex" not in html and "Pat" not in html
    assert 'id="new-customer"' not in html
    assert "/admin/operator/staff" not in html  # no link to pages that are not theirs
    assert web.get(f"/admin/operator/customers/{ids['globex']}").status_code == 404
    assert web.get(f"/admin/operator/customers/{ids['acme']}").status_code == 200
    assert web.get("/admin/operator/customers/new").status_code == 403
    assert web.get("/admin/operator/staff").status_code == 403
    assert web.get("/admin/operator/merchants").status_code == 403
    exported = web.get("/admin/operator/customers.csv").get_data(as_text=True)
    assert "ACME" in exported and "Globex" not in exported
    # removing a staff assignment is the operator's: 403, nothing removed
    page = f"/admin/operator/customers/{ids['acme']}/authorisations"
    resp = post(web, page, page + "/remove", {"staff": ids[SAM], "confirm": "yes"})
    assert resp.status_code == 403
    with app.app_context():
        assert staff.is_assigned(ids[SAM], ids["acme"])


def test_filter_bar_and_csv_export(app: Flask) -> None:
    ids = world(app)
    web = browser(app, ids[OPS])
    html = web.get("/admin/operator/").get_data(as_text=True)
    assert all(name in html for name in ("ACME", "Globex", "Pat =Formula"))
    only_people = web.get("/admin/operator/?kind=person").get_data(as_text=True)
    assert "Pat =Formula" in only_people and "Globex" not in only_people
    named = web.get("/admin/operator/?q=glob&kind=nonsense").get_data(as_text=True)
    assert "Globex" in named and "ACME" not in named
    resp = web.get("/admin/operator/customers.csv?kind=person")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0][:3] == ["id", "kind", "name"]
    assert [r[2] for r in rows[1:]] == ["Pat =Formula"]  # no cell starts with "="
    german = web.get("/admin/operator/customers.csv?dialect=excel-de").get_data(as_text=True)
    assert german.startswith("\ufeffid;kind;name")


def test_staff_creates_a_company_and_adds_its_first_contact(app: Flask) -> None:
    ids = world(app)
    web = browser(app, ids[OPS])
    new = "/admin/operator/customers/new"
    # refused input comes back on the form, with the values typed and a summary
    resp = post(web, new, new, {"kind": "company", "name": "", "city": "Berlin"})
    assert resp.status_code == 303 and resp.headers["Location"] == new
    html = web.get(new).get_data(as_text=True)
    assert "There is a problem" in html and 'value="Berlin"' in html
    resp = post(web, new, new, {"kind": "company", "name": "Initech", "vat_id": "12-34"})
    assert "Enter a VAT id" in web.get(resp.headers["Location"]).get_data(as_text=True)
    post(web, new, new, {"kind": "company", "name": "Initech", "country": "Germany"})
    html = web.get(new).get_data(as_text=True)
    assert 'href="#country">Enter the country as two letters' in html

    resp = post(web, new, new, {"kind": "company", "name": "Initech", "street": "Main St 1",
                                "postal_code": "10115", "city": "Berlin", "country": "de",
                                "vat_id": "DE 123 456 789"})
    assert resp.status_code == 303
    with app.app_context():
        unit = db.session.scalars(select(Unit).where(Unit.name == "Initech")).one()
        assert unit.vat_id == "DE123456789" and unit.address["country"] == "DE"
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "customer.create", AuditEvent.target == unit.id)).one()
        assert event.actor == f"staff:{ids[OPS]}"
    # straight on to its first contact: the company console's one contact form
    accesses_page = f"/admin/units/{unit.id}/accesses"
    assert resp.headers["Location"] == accesses_page + "#invite"
    html = web.get(accesses_page).get_data(as_text=True)
    assert "Now add its first contact" in html and 'id="invite"' in html
    resp = post(web, accesses_page, accesses_page + "/invite", {
        "email": "ivy@initech.example", "given_name": "Ivy", "family_name": "Initech",
        "roles": "main_user", "platform_access": "yes"})
    assert resp.status_code == 303
    assert "ivy@initech.example was invited." in web.get(accesses_page).get_data(as_text=True)
    contacts = web.get(f"/admin/operator/customers/{unit.id}/contacts").get_data(as_text=True)
    assert "ivy@initech.example" in contacts and "Main user" in contacts
    assert "Invited" in contacts
    assert f'href="{accesses_page}#invite"' in contacts  # "Add a contact"
    with app.app_context():
        access = db.session.scalars(select(Access).where(Access.unit_id == unit.id)).one()
        assert access.roles == ["main_user"] and access.status == "invited"
        assert db.session.scalars(select(AccessInvitation).where(
            AccessInvitation.access_id == access.id)).first() is not None
    courier(app).drain()


def test_a_person_customer(app: Flask) -> None:
    ids = world(app)
    web = browser(app, ids[OPS])
    new = "/admin/operator/customers/new"
    resp = post(web, new, new, {"kind": "person", "given_name": "Rita", "family_name": "Roe",
                                "name": "ignored for a person"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/accesses#invite")
    customer = resp.headers["Location"].split("/")[3]
    html = web.get(f"/admin/operator/customers/{customer}").get_data(as_text=True)
    assert "Rita Roe" in html and "Person" in html


def test_authorisations_view_and_confirmed_removal(app: Flask) -> None:
    ids = world(app)
    ben = make_account(app, "ben@acme.example")
    with app.app_context(), atomic():
        ben_access = accesses.create(ben, ids["acme"], ["employee"], "test", event=None).id
    web = browser(app, ids[OPS])
    page = f"/admin/operator/customers/{ids['acme']}/authorisations"
    html = web.get(page).get_data(as_text=True)
    assert "mia@acme.example" in html and "ben@acme.example" in html
    assert SAM in html and "Administrator" in html
    assert f'value="{ben_access}"' in html
    # not confirmed: nothing happens
    resp = post(web, page, page + "/remove", {"access": ben_access})
    assert resp.status_code == 303 and resp.headers["Location"] == page
    assert "Tick the box" in web.get(page).get_data(as_text=True)
    # the last main user: refused as a whole
    resp = post(web, page, page + "/remove",
                {"access": [ben_access, ids["mia_access"]], "confirm": "yes"})
    assert "last main user" in web.get(page).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Access, ben_access) is not None
    resp = post(web, page, page + "/remove",
                {"access": ben_access, "staff": ids[SAM], "confirm": "yes"})
    assert resp.status_code == 303
    assert "2 authorisations removed." in web.get(page).get_data(as_text=True)
    with app.app_context():
        row = db.session.get(Access, ben_access)
        assert row is None or row.status == "removed"
        assert not staff.is_assigned(ids[SAM], ids["acme"])
    # a staff member who lost the assignment lost the customer
    assert browser(app, ids[SAM]).get(page).status_code == 404


def test_staff_assignments_page(app: Flask) -> None:
    ids = world(app)
    web = browser(app, ids[OPS])
    page = "/admin/operator/staff"
    html = web.get(page).get_data(as_text=True)
    assert SAM in html and "ACME" in html
    resp = post(web, page, page + "/assign", {"staff-email": SAM, "staff-customer": "globex",
                                              "kind": "processor"})
    assert "at least one permission" in web.get(page).get_data(as_text=True)
    resp = post(web, page, page + "/assign", {"staff-email": SAM, "staff-customer": "globex",
                                              "kind": "processor",
                                              "permissions": ["users.read", "audit.read"]})
    assert resp.status_code == 303
    assert "is assigned to Globex" in web.get(page).get_data(as_text=True)
    with app.app_context():
        assert may(Actor.staff(ids[SAM]), "users.read", ids["globex"])
        assert not may(Actor.staff(ids[SAM]), "users.manage", ids["globex"])
    resp = post(web, page, page + "/assign", {"staff-email": MIA, "staff-customer": "globex",
                                              "kind": "administrator"})
    assert "No staff member with this e-mail address." in web.get(page).get_data(as_text=True)
    resp = post(web, page, page + "/unassign",
                {"account_id": ids[SAM], "customer_id": ids["globex"]})
    assert resp.status_code == 303
    with app.app_context():
        assert not staff.is_assigned(ids[SAM], ids["globex"])


def test_send_access_details_to_the_people_not_yet_registered(app: Flask) -> None:
    ids = world(app)
    web = browser(app, ids[OPS])
    form = f"/admin/units/{ids['globex']}/accesses"
    post(web, form, form + "/invite", {"email": "gus@globex.example", "given_name": "Gus",
                                       "family_name": "G", "roles": "main_user",
                                       "platform_access": "yes"})
    with app.app_context():
        first = db.session.scalars(select(AccessInvitation)).one()
    resp = post(web, "/admin/operator/", "/admin/operator/send-details",
                {"customer": [ids["globex"], ids["acme"]]})
    assert resp.status_code == 303
    assert "Access details sent to 1 people" in web.get("/admin/operator/").get_data(
        as_text=True)
    with app.app_context():
        rows = list(db.session.scalars(select(AccessInvitation)))
        assert len(rows) == 2 and any(r.id != first.id for r in rows)
    resp = post(web, "/admin/operator/", "/admin/operator/send-details", {})
    assert "Select at least one customer." in web.get("/admin/operator/").get_data(
        as_text=True)
    courier(app).drain()


def test_merchants_list_and_detail(app: Flask) -> None:
    ids = world(app)
    rp = register(app, name="Office Supplies Ltd")
    web = browser(app, ids[OPS])
    html = web.get("/admin/operator/merchants").get_data(as_text=True)
    assert "Office Supplies Ltd" in html
    detail = web.get(f"/admin/operator/merchants/oidc/{rp.client_id}").get_data(as_text=True)
    assert rp.client_id in html and rp.redirect_uri in detail
    assert web.get("/admin/operator/merchants/oidc/nope").status_code == 404
    assert web.get("/admin/operator/merchants/saml/nope").status_code == 404


def test_posts_need_csrf_and_pages_speak_german(app: Flask) -> None:
    ids = world(app)
    web = browser(app, ids[OPS])
    resp = web.post("/admin/operator/customers/new", data={"kind": "company", "name": "X"})
    assert resp.status_code == 400
    html = web.get("/admin/operator/", headers={"Accept-Language": "de"}).get_data(
        as_text=True)
    assert "Kunden" in html and "Als CSV exportieren" in html
    html = web.get("/admin/operator/customers/new",
                   headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Neuer Kunde" in html and "Firmenname" in html
