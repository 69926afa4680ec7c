"""Transactions (issue 17, item 4): the employee's dashboard shows their purchases
with their status beside the sign-ins; a unit's admins list the unit's purchases
(filtered, paged) and export them as CSV whose cells never run as formulas; another
unit's admin gets 404 for both."""

from __future__ import annotations

import csv
import io

from flask import Flask
from flask.testing import FlaskClient

from idp.cli import main
from idp.units import registry as units
from tests.support.api import api_for, assert_problem
from tests.support.login import sign_in_to_dashboard
from tests.support.purchases import Shop, merchant, person, token


def _setup(app: Flask, client: FlaskClient) -> tuple[str, str, Shop]:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        units.create("ACME Sales", slug="acme-sales", parent="acme")
        globex = units.create("Globex", slug="globex").id
    res = app.test_cli_runner().invoke(main, [
        "budgets", "set", "--unit", "acme", "--role", "employee", "--period", "month",
        "--amount", "100.00", "--currency", "EUR", "--json"])
    assert res.exit_code == 0, res.output
    ann = person(app, "ann@acme.example", acme, ["employee"])
    shop = Shop(client, token(app, client, merchant(app, "Paper Shop"), ann, acme))
    return acme, globex, shop


def test_the_dashboard_shows_my_purchases(app: Flask, client: FlaskClient) -> None:
    _, _, shop = _setup(app, client)
    shop.buy("40.00", order_ref="PO-DASH-1")
    shop.buy("70.00", order_ref="PO-DASH-2")  # refused: over the budget
    web = app.test_client()
    html = sign_in_to_dashboard(app, web, "ann@acme.example").get_data(as_text=True)
    assert "PO-DASH-1" in html and "PO-DASH-2" in html and "Paper Shop" in html
    assert html.index('id="purchases"') < html.index('id="signins"')
    assert "Approved" in html and "Refused" in html


def test_admins_list_and_export_the_units_purchases(app: Flask, client: FlaskClient) -> None:
    acme, globex, shop = _setup(app, client)
    ids = [shop.buy("10.00", order_ref=ref).get_json()["id"]
           for ref in ("PO-1", "=HYPERLINK(\"http://evil\")", "PO-3")]
    shop.buy("95.00", order_ref="PO-big")  # refused
    api = api_for(app, client, acme)
    first = api.get(f"/units/{acme}/purchases?limit=2").get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = api.get(f"/units/{acme}/purchases?limit=2&cursor={first['next_cursor']}").get_json()
    assert rest["next_cursor"] is None
    seen = [p["order_ref"] for p in first["items"] + rest["items"]]
    assert seen[0] == "PO-big" and len(seen) == 4 and len(set(seen)) == 4
    approved = api.get(f"/units/{acme}/purchases?status=approved").get_json()["items"]
    assert sorted(p["id"] for p in approved) == sorted(ids)
    assert api.get(f"/units/{acme}/purchases?status=nope").status_code == 422
    resp = api.get(f"/units/{acme}/purchases.csv?status=approved")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True)
    assert text.startswith("\ufeff")  # UTF-8 with a BOM, like every spreadsheet export
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["id", "created_at", "status"]
    refs = {r[4] for r in rows[1:]}
    assert refs == {"PO-1", "'=HYPERLINK(\"http://evil\")", "PO-3"}
    assert all(r[5] == "10.00" and r[7] == "Paper Shop" for r in rows[1:])
    # another unit's admin sees neither
    other = api_for(app, client, globex)
    assert_problem(other.get(f"/units/{acme}/purchases"), 404)
    assert_problem(other.get(f"/units/{acme}/purchases.csv"), 404)
    assert_problem(client.get(f"/api/v1/units/{acme}/purchases.csv"), 401)
