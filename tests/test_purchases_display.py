"""Amounts as people read them: pages and e-mails show an amount in the reader's
language ("80,00 €" in German, "€80.00" in English, through
:func:`idp.purchases.money.display` and the template filter ``money``), while the
merchants' API, the administration API and the CSV export keep the machine form
("80.00" with the currency apart)."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts import accesses
from idp.purchases import money
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import api_for
from tests.support.login import csrf_token, path_of, submit_code, submit_email
from tests.support.oidc import make_account, make_unit, start_session
from tests.support.purchases import Shop, employee_budget, merchant, person, token
from tests.support.smtp import SmtpSink, code_in, html_of, text_of

NBSP = "\u00a0"  # CLDR puts a no-break space between a German amount and its sign
GERMAN = {"Accept-Language": "de"}
LINK_RE = re.compile(r"(http://localhost/account/approvals/[0-9a-f]{32}\?link=\S+)")


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


def test_display_is_the_readers_form_with_the_currencys_places() -> None:
    assert money.display(8000, "EUR", "de") == f"80,00{NBSP}€"
    assert money.display(8000, "EUR", "en") == "€80.00"
    assert money.display(123456789, "EUR", "de") == f"1.234.567,89{NBSP}€"
    assert money.display(1500, "JPY", "de") == f"1.500{NBSP}¥"  # no decimals
    assert money.display(1234, "BHD", "en") == "BHD1.234"  # three
    # ISO 4217's two places for the forint, although CLDR shows none: nothing rounded
    assert money.display(1250, "HUF", "en") == "HUF12.50"
    assert money.format_minor(8000, "EUR") == "80.00"  # the machine form is unchanged


def _sign_in(web: FlaskClient, smtp: SmtpSink, email: str) -> None:
    """The real dashboard sign-in, the code read from the SMTP server."""
    login = path_of(web.get("/account"))
    after = len(smtp.messages)
    submit_email(web, login, email)
    resp = submit_code(web, login, code_in(smtp.last_to(email, after=after)))
    assert resp.status_code == 303
    web.get(resp.headers["Location"])


def test_a_german_approver_reads_euros_in_the_email_and_on_the_page(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink
) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    employee_budget(app)
    ann = person(app, "ann@acme.example", acme, ["employee"])
    max_ = make_account(app, "max@acme.example", locale="de-DE")
    with app.app_context(), atomic():
        accesses.create(max_, acme, ["commercial_contact"], "test", event=None)
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    after = len(smtp_server.messages)
    lines = [{"sku": "CH-1", "description": "Stuhl", "quantity": 1, "amount": "80.00"}]
    answer = shop.buy("80.00", order_ref="PO-80", lines=lines).get_json()
    assert answer["status"] == "pending_approval"
    assert answer["amount"] == "80.00" and answer["currency"] == "EUR"  # the API: machine form
    assert shop.get(answer["id"]).get_json()["amount"] == "80.00"

    mail = smtp_server.last_to("max@acme.example", after=after)
    text, html = text_of(mail), html_of(mail)
    assert f"Bestellung PO-80: 80,00{NBSP}€" in text
    assert f"Bestellung PO-80: 80,00{NBSP}€" in html
    assert "80.00" not in text and "EUR" not in text

    found = LINK_RE.search(text)
    assert found is not None
    parts = urlsplit(found.group(1))
    web = app.test_client()
    _sign_in(web, smtp_server, "max@acme.example")
    page = web.get(f"{parts.path}?{parts.query}", headers=GERMAN)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"<strong>80,00{NBSP}€</strong>" in html
    assert f"Verbleibendes Budget in diesem Zeitraum: 100,00{NBSP}€" in html
    assert f"<td>80,00{NBSP}€</td>" in html  # the order line
    assert 'value="80.00"' in html  # the line's input keeps what the form accepts
    assert "80.00 EUR" not in html and "100.00 EUR" not in html
    html = web.get(f"{parts.path}?{parts.query}&lang=en").get_data(as_text=True)
    assert "<strong>€80.00</strong>" in html and "Budget left this period: €100.00" in html


def test_console_and_dashboard_show_amounts_in_the_pages_language(
    app: Flask, client: FlaskClient
) -> None:
    ada = make_account(app, "ada@acme.example")
    acme = make_unit(app, ada, "Acme", roles=["main_user"])
    eve = make_account(app, "eve@acme.example")
    with app.app_context(), atomic():
        accesses.create(eve, acme, ["employee"], "test", event=None)
    web = app.test_client()
    start_session(app, web, ada)
    page = f"/admin/units/{acme}/budgets"
    form = {"scope": "role", "subject": "employee", "period": "month", "amount": "1000.00",
            "per_order": "50.00", "currency": "EUR"}
    csrf = csrf_token(web.get(page).get_data(as_text=True))
    assert web.post(page, data={"csrf_token": csrf, **form}).status_code == 303
    html = web.get(page).get_data(as_text=True)
    assert "<td>€1,000.00</td>" in html and "<td>€50.00</td>" in html
    html = web.get(page, headers=GERMAN).get_data(as_text=True)
    assert f"<td>1.000,00{NBSP}€</td>" in html and f"<td>50,00{NBSP}€</td>" in html
    assert "1000.00 EUR" not in html

    shop = Shop(app.test_client(), token(app, app.test_client(), merchant(app), eve, acme))
    answer = shop.buy("80.00", order_ref="PO-80").get_json()
    assert answer["status"] == "pending_approval" and answer["amount"] == "80.00"
    approvals = f"/admin/units/{acme}/approvals"
    html = web.get(approvals, headers=GERMAN).get_data(as_text=True)
    assert f"PO-80 · 80,00{NBSP}€" in html
    csrf = csrf_token(web.get(approvals).get_data(as_text=True))
    resp = web.post(f"{approvals}/{answer['approval']['id']}",
                    data={"csrf_token": csrf, "action": "approve"})
    assert resp.status_code == 303
    purchases = f"/admin/units/{acme}/purchases"
    assert "<td>€80.00</td>" in web.get(purchases).get_data(as_text=True)
    html = web.get(purchases, headers=GERMAN).get_data(as_text=True)
    assert f"<td>80,00{NBSP}€</td>" in html and "80.00 EUR" not in html

    eve_web = app.test_client()
    start_session(app, eve_web, eve)
    html = eve_web.get("/account", headers=GERMAN).get_data(as_text=True)
    assert f"<td>80,00{NBSP}€</td>" in html
    assert "<td>€80.00</td>" in eve_web.get("/account?lang=en").get_data(as_text=True)

    # the machines keep "80.00": the administration API and the CSV export
    api = api_for(app, app.test_client(), acme)
    budget = api.get(f"/units/{acme}/budgets").get_json()["items"][0]
    assert (budget["amount"], budget["per_order"]) == ("1000.00", "50.00")
    item = api.get(f"/units/{acme}/purchases").get_json()["items"][0]
    assert (item["amount"], item["currency"]) == ("80.00", "EUR")
    text = api.get(f"/units/{acme}/purchases.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][5:7] == ["amount", "currency"] and rows[1][5:7] == ["80.00", "EUR"]
