"""Issue 16 item 3: typed unit fields. A field's type (text, number, money with its
currency, date, choice, e-mail, phone), its labels and help per language and who
sets it (employee or company) are checked where it is defined (service, ``idp
apply``, CLI); every writer's value is checked against the type (the dashboard and
the wallet form with translated errors, SCIM/LDAP through the one fact writer);
merchants receive typed values (a JSON number, money as amount and currency, an
ISO date) in the ID token and userinfo and a documented string form in SAML; a
field the company sets is never the employee's to change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from idp.accounts import accesses
from idp.cli import main
from idp.config import apply as config_apply
from idp.config import export
from idp.provisioning.errors import FieldOwned, InvalidValue
from idp.release.claims import released_claims
from idp.saml.attributes import to_attributes
from idp.store import claims_repo
from idp.store.db import db
from idp.store.models import Access, Account
from idp.store.unit_of_work import atomic
from idp.units import field_types
from idp.units import registry as units
from tests.support import oidc
from tests.support.login import csrf_token, follow_to_page

TYPED = [
    # name, type, options, a good value -> stored, a bad value, the error key
    ("limit", "money", {"currency": "EUR"}, "12,5", "12.50", "lots of money", "field_money"),
    ("seats", "number", {}, "3", "3", "three", "field_number"),
    ("start", "date", {}, "2026-12-31", "2026-12-31", "31.12.2026", "field_date"),
    ("size", "choice", {"choices": ["S", "M", "L"]}, "M", "M", "XXL", "field_choice"),
    ("deputy", "email", {}, "Bob@Corp.Example", "bob@corp.example", "bob at corp", "email_invalid"),
    ("desk", "phone", {}, "+49 30 123456", "+4930123456", "030 123", "field_phone"),
]


def _unit_with_fields(app: Flask, account_id: str) -> str:
    unit_id = oidc.make_unit(app, account_id, "Corp GmbH")
    with app.app_context():
        for name, kind, options, *_ in TYPED:
            units.add_field(
                "corp-gmbh", name, name.title(), type_=kind,
                currency=options.get("currency"), choices=options.get("choices"),
            )
        units.add_field("corp-gmbh", "purchase_limit", "Purchase limit", type_="money",
                        currency="EUR", set_by="company",
                        labels={"de": "Einkaufslimit"},
                        help_={"en": "Set by your company.", "de": "Legt Ihre Firma fest."})
        units.add_field("corp-gmbh", "note", "Note",
                        labels={"de": "Notiz"}, help_={"de": "Für die Buchhaltung."})
    return unit_id


def _access(account_id: str) -> Access:
    return db.session.scalars(select(Access).where(Access.account_id == account_id)).one()


# -- definitions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type_": "colour"}, "type: one of"),
        ({"type_": "money"}, "currency"),
        ({"type_": "money", "currency": "XYZ"}, "currency"),
        ({"type_": "text", "currency": "EUR"}, "only for a money field"),
        ({"type_": "choice"}, "at least one choice"),
        ({"type_": "choice", "choices": ["x" * 101]}, "1 to 100"),
        ({"type_": "number", "choices": ["a"]}, "only for a choice field"),
        ({"labels": {"fr": "Limite"}}, "languages are"),
        ({"help_": {"de": "x" * 501}}, "at most 500"),
        ({"set_by": "hr"}, "set_by"),
    ],
)
def test_a_field_definition_is_checked(app: Flask, kwargs: dict[str, Any], message: str) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
        with pytest.raises(units.UnitError) as err:
            units.add_field("acme", "limit", "Limit", **kwargs)
        assert err.value.code == "invalid_field_type" and message in str(err.value)
        assert units.fields("acme") == []


def test_a_typed_field_is_stored_with_its_translations_and_kept_on_a_change(app: Flask) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
        units.add_field("acme", "limit", "Limit", type_="money", currency="eur",
                        set_by="company", labels={"de": " Limit (DE) "}, help_={"en": "Help"})
        units.add_field("acme", "limit", "Purchase limit", required=True)  # a label change
        (row,) = units.fields("acme")
        assert units.field_to_dict(row) == {
            "name": "limit", "label": "Purchase limit", "required": True, "type": "money",
            "currency": "EUR", "labels": {"de": "Limit (DE)"}, "help": {"en": "Help"},
            "set_by": "company",
        }
        assert field_types.label(row, "de") == "Limit (DE)"
        assert field_types.label(row, "en") == "Purchase limit"
        assert field_types.help_text(row, "de") == "Help"  # falls back to English


def test_cli_adds_a_typed_field(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
    result = runner.invoke(main, [
        "units", "fields", "add", "acme", "--name", "size", "--label", "Size",
        "--type", "choice", "--choice", "S", "--choice", "M", "--label-de", "Größe",
        "--help-de", "Ihre Größe", "--json",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["type"] == "choice" and data["choices"] == ["S", "M"]
    assert data["labels"] == {"de": "Größe"} and data["help"] == {"de": "Ihre Größe"}
    refused = runner.invoke(main, [
        "units", "fields", "add", "acme", "--name", "limit", "--type", "money", "--json",
    ])
    assert refused.exit_code == 1 and "invalid_field_type" in refused.output
    listed = runner.invoke(main, ["units", "fields", "list", "acme"])
    assert "size: Size (choice)" in listed.output


TYPED_CONFIG = """
version: 1
units:
  - slug: acme
    name: ACME
    profile_fields:
      - name: purchase_limit
        label: Purchase limit
        type: money
        currency: EUR
        set_by: company
        labels: {de: Einkaufslimit}
        help: {en: Set by your company.}
      - {name: size, type: choice, choices: [S, M]}
"""


def test_apply_defines_and_exports_typed_fields(app: Flask) -> None:
    with app.app_context():
        config_apply.apply(config_apply.parse(TYPED_CONFIG))
        rows = {f.name: f for f in units.fields("acme")}
        assert rows["purchase_limit"].type == "money" and rows["purchase_limit"].currency == "EUR"
        assert rows["purchase_limit"].set_by == "company"
        assert rows["purchase_limit"].labels == {"de": "Einkaufslimit"}
        assert rows["size"].choices == ["S", "M"]
        assert config_apply.apply(config_apply.parse(TYPED_CONFIG)).changes == []  # idempotent
        exported = export.export_config()
        (acme,) = [u for u in exported["units"] if u["slug"] == "acme"]
        assert acme["profile_fields"][0]["type"] == "money"
        assert acme["profile_fields"][0]["set_by"] == "company"
        with pytest.raises(config_apply.ApplyError) as err:
            config_apply.apply(config_apply.parse(
                TYPED_CONFIG.replace("choices: [S, M]", "choices: []")
            ))
        assert "at least one choice" in str(err.value)


# -- values ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind", "options", "good", "stored", "bad", "key"), TYPED)
def test_every_writer_goes_through_the_type_check(
    app: Flask, name: str, kind: str, options: dict[str, Any], good: str, stored: str,
    bad: str, key: str,
) -> None:
    ann = oidc.make_account(app)
    _unit_with_fields(app, ann)
    with app.app_context():
        row = _access(ann)
        with pytest.raises(InvalidValue) as err, atomic():  # a directory (SCIM, LDAP)
            accesses.set_facts(row, {f"extra.{name}": bad}, "scim")
        assert name in str(err.value)
        with atomic():
            accesses.set_facts(row, {f"extra.{name}": good}, "scim")
        assert _access(ann).extra[name] == stored
        with atomic():  # a lenient writer (LDAP sync, an SSO sign-in) skips it, goes on
            change = accesses.set_facts(row, {f"extra.{name}": bad, "cost_centre": "CC-2"},
                                        "ldap", refuse=False)
        assert change.skipped == [f"extra.{name}"] and change.fields == ["cost_centre"]
        assert _access(ann).extra[name] == stored
        definition = next(f for f in units.fields("corp-gmbh") if f.name == name)
        with pytest.raises(field_types.FieldValueError) as refused:
            field_types.normalise(definition, bad)
        assert refused.value.code == key


def test_the_employee_never_writes_a_field_the_company_sets(app: Flask) -> None:
    ann = oidc.make_account(app)
    _unit_with_fields(app, ann)
    with app.app_context():
        with atomic():
            accesses.set_facts(_access(ann), {"extra.purchase_limit": "500"}, "scim")
        with pytest.raises(FieldOwned), atomic():
            accesses.set_facts(_access(ann), {"extra.purchase_limit": "1000000"}, "employee")
        with atomic():  # the wallet form's lenient write skips it
            change = accesses.set_facts(
                _access(ann), {"extra.purchase_limit": "1000000"}, "employee", refuse=False
            )
        assert change.skipped == ["extra.purchase_limit"]
        assert _access(ann).extra["purchase_limit"] == "500.00"


def test_claims_carry_typed_values_and_saml_their_string_form(app: Flask) -> None:
    ann = oidc.make_account(app)
    unit_id = _unit_with_fields(app, ann)
    with app.app_context():
        with atomic():
            accesses.set_facts(_access(ann), {
                "extra.limit": "12.5", "extra.seats": "2.50", "extra.start": "2026-12-31",
                "extra.size": "M", "extra.purchase_limit": "1500", "extra.note": "hi",
            }, "scim")
        account = db.session.get(Account, ann)
        assert account is not None
        fields = released_claims(account, ["openid", "wallet"], unit_id)["wallet_fields"]
        assert fields == {
            "limit": {"amount": "12.50", "currency": "EUR"},
            "seats": 2.5,
            "start": "2026-12-31",
            "size": "M",
            "purchase_limit": {"amount": "1500.00", "currency": "EUR"},
            "note": "hi",
        }
        attrs = {a.friendly_name: a.values for a in to_attributes({"wallet_fields": fields},
                                                                  ["wallet_fields"])}
        assert attrs["limit"] == ("12.50 EUR",) and attrs["seats"] == ("2.5",)
        assert attrs["start"] == ("2026-12-31",)
        # a text stored before the field became a number is not released as a number
        row = _access(ann)
        row.extra = {**row.extra, "seats": "a few"}
        db.session.commit()
        released = released_claims(account, ["openid", "wallet"], unit_id)["wallet_fields"]
        assert "seats" not in released and released["size"] == "M"
        assert [f.name for f in claims_repo.profile_fields(unit_id)][:2] == ["limit", "seats"]


def test_the_id_token_and_userinfo_carry_typed_values(app: Flask, client: FlaskClient) -> None:
    ann = oidc.make_account(app)
    unit_id = _unit_with_fields(app, ann)
    with app.app_context(), atomic():
        accesses.set_facts(_access(ann), {"extra.seats": "3", "extra.limit": "9.99"}, "scim")
    rp = oidc.register(app)
    si = oidc.sign_in(app, client, rp, ann, unit_id=unit_id, scope="openid wallet")
    tokens = oidc.exchange(client, rp, si).get_json()
    claims = oidc.verify_jwt(client, tokens["id_token"]).claims
    seats = claims["wallet_fields"]["seats"]
    assert seats == 3 and isinstance(seats, int)
    assert claims["wallet_fields"]["limit"] == {"amount": "9.99", "currency": "EUR"}
    info = oidc.userinfo(client, tokens["access_token"]).get_json()
    assert info["wallet_fields"] == claims["wallet_fields"]


# -- the dashboard and the wallet form ---------------------------------------------


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    yield client


def _dashboard(web: FlaskClient, lang: str = "en") -> str:
    resp = web.get(f"/account?lang={lang}")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _save(web: FlaskClient, html: str, unit_id: str, values: dict[str, str]) -> str:
    resp = web.post("/account/profile", data={
        "csrf_token": csrf_token(html), "unit_id": unit_id, "given_name": "Ann",
        "family_name": "Example", **values,
    })
    assert resp.status_code == 303
    return web.get(resp.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(("name", "kind", "options", "good", "stored", "bad", "key"), TYPED)
def test_the_dashboard_refuses_a_value_of_the_wrong_type_in_both_languages(
    app: Flask, web: FlaskClient, name: str, kind: str, options: dict[str, Any], good: str,
    stored: str, bad: str, key: str,
) -> None:
    ann = oidc.make_account(app)
    unit_id = _unit_with_fields(app, ann)
    oidc.start_session(app, web, ann)
    html = _save(web, _dashboard(web), unit_id, {f"extra__{name}": bad})
    from idp.login.messages import MESSAGES

    with app.test_request_context("/"):
        english = str(MESSAGES[key])
    assert "Please correct the marked fields." in html
    assert english in html.replace("&#39;", "'").replace("&#34;", '"')
    with app.app_context():
        assert name not in (_access(ann).extra or {})
    html = _save(web, _dashboard(web, "de"), unit_id, {f"extra__{name}": bad})
    assert "Bitte korrigieren Sie die markierten Felder." in html
    assert english not in html  # the German text, not the English one
    html = _save(web, _dashboard(web), unit_id, {f"extra__{name}": good})
    assert "Your profile was saved." in html
    with app.app_context():
        assert _access(ann).extra[name] == stored


def test_the_dashboard_shows_types_translations_and_the_company_field_read_only(
    app: Flask, web: FlaskClient
) -> None:
    ann = oidc.make_account(app)
    unit_id = _unit_with_fields(app, ann)
    with app.app_context(), atomic():
        accesses.set_facts(_access(ann), {"extra.purchase_limit": "500"}, "scim")
    oidc.start_session(app, web, ann)
    html = _dashboard(web, "de")
    assert 'name="extra__start" type="date"' in html
    assert 'name="extra__desk" type="tel"' in html
    assert '<select id="extra__size" name="extra__size"' in html
    assert 'inputmode="decimal"' in html
    assert "Notiz" in html and "Für die Buchhaltung." in html
    assert "Einkaufslimit (EUR)" in html and "Von Ihrem Unternehmen festgelegt" in html
    assert 'name="extra__purchase_limit"' not in html  # no input for it
    # posting it anyway changes nothing
    _save(web, html, unit_id, {"extra__purchase_limit": "999999"})
    with app.app_context():
        assert _access(ann).extra["purchase_limit"] == "500.00"


def test_the_wallet_form_checks_types_and_leaves_out_company_fields(
    app: Flask, client: FlaskClient
) -> None:
    from tests.support.login import add_protocol_stand_in

    add_protocol_stand_in(app)
    ann = oidc.make_account(app, given_name="", family_name="")  # the wallet form is due
    _unit_with_fields(app, ann)
    oidc.start_session(app, client, ann)
    resp = client.get("/_test/start", query_string={"scope": "openid wallet"})
    login, page = follow_to_page(client, resp.headers["Location"])
    assert login.endswith("/profile"), login
    html = page.get_data(as_text=True)
    assert 'name="extra__limit"' in html and 'name="extra__purchase_limit"' not in html
    resp = client.post(login, data={
        "csrf_token": csrf_token(html), "given_name": "Ann", "family_name": "Example",
        "extra__limit": "lots of money", "extra__start": "tomorrow",
    })
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/profile")
    html = client.get(login).get_data(as_text=True)
    assert "Enter an amount, like 12.50" in html and "Enter a date as year-month-day" in html
    with app.app_context():
        assert "limit" not in (_access(ann).extra or {})
    resp = client.post(login, data={
        "csrf_token": csrf_token(html), "given_name": "Ann", "family_name": "Example",
        "extra__limit": "12.5", "extra__start": "2027-01-01",
    })
    assert resp.status_code == 303 and not resp.headers["Location"].endswith("/profile")
    with app.app_context():
        extra = _access(ann).extra
        assert extra["limit"] == "12.50" and extra["start"] == "2027-01-01"


def test_scim_refuses_a_value_of_the_wrong_type(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    from tests.support import scim

    unit_id = scim.make_unit(app, "acme", verified=("acme.example",))
    with app.app_context():
        units.add_field("acme", "purchase_limit", "Purchase limit", type_="money",
                        currency="EUR", set_by="company")
    hr = scim.Scim(client, scim.create_token(runner, unit_id))
    urn = "urn:unitgate:params:scim:schemas:extension:unit:2.0:User"

    def user(limit: str) -> dict[str, Any]:
        return {"schemas": [scim.USER, urn], "userName": "ann@acme.example",
                "name": {"givenName": "Ann", "familyName": "A"},
                urn: {"purchase_limit": limit}}

    refused = scim.body(hr.post("/Users", user("lots of money")), 400)
    assert refused["scimType"] == "invalidValue" and "purchase_limit" in refused["detail"]
    created = scim.body(hr.post("/Users", user("1500")), 201)
    assert created[urn]["purchase_limit"] == "1500.00"
