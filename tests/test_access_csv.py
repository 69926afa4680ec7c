"""CSV export and import of a unit's accesses (issue 13, items 3 and 4): the round
trip, the formula defusing, every list filter applied to the export, the dry run
writing nothing, per-row errors, the idempotent re-run, both separators with a
byte order mark, the authorisation, the invitation budget, and the streaming."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from idp.accounts import access_csv, accesses
from idp.cli import main
from idp.rights import SYSTEM, groups
from idp.store.access_lists_repo import Filter
from idp.store.db import db
from idp.store.models import AccessInvitation, Account, AuditEvent, OutboxMessage, utcnow
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from idp.web import spreadsheet
from tests.support.api import Api, api_for, assert_problem
from tests.support.login import csrf_token, sign_in_to_dashboard

NOW = utcnow()
COMPARED = ("email", "given_name", "family_name", "mobile", "roles", "permission_groups",
            "platform_access", "notifications", "status")


@pytest.fixture
def acme(app: Flask) -> dict[str, str]:
    """ACME (sub-unit Sales, group buyers) with 10 people, an empty unit New (with
    the same group) and Globex."""
    with app.app_context():
        ids = {
            "acme": units.create("ACME", slug="acme").id,
            "sales": units.create("ACME Sales", parent="acme", slug="acme-sales").id,
            "new": units.create("New Co", slug="new").id,
            "globex": units.create("Globex", slug="globex").id,
        }
        groups.set_group("acme", "buyers", ["orders.create"])
        groups.set_group("new", "buyers", ["orders.create"])
        for i in range(10):
            roles = ["main_user"] if i == 0 else ["employee"] + (["buyers"] if i % 3 == 0 else [])
            domain = "acme.example" if i < 7 else "contractor.example"
            account = Account(email=f"p{i}@{domain}", email_verified=True,
                              given_name=f"Given{i}", family_name="Zed" if i == 5 else "Other",
                              phone_number="+4930123456" if i == 2 else None)
            db.session.add(account)
            db.session.flush()
            with atomic():
                row = accesses.create(account.id, ids["acme"], roles, "test", event=None)
                row.status = "suspended" if i == 4 else "active"
                row.last_signin_at = None if i % 2 else NOW - timedelta(days=i * 10)
                row.platform_access = i != 6
                row.notifications = ["invoice.issued"] if i == 8 else None
                row.details_sent_at = NOW if i in (1, 2) else None
        account = Account(email="s0@acme.example", email_verified=True, given_name="S",
                          family_name="Sales")
        db.session.add(account)
        db.session.flush()
        with atomic():
            accesses.create(account.id, ids["sales"], ["employee"], "test", event=None)
        return ids


def rows_of(resp: Any) -> list[dict[str, str]]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "text/csv"
    text = resp.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return parse(text[1:])


def parse(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def post_csv(api: Api, unit: str, text: str, dry_run: bool = False, **query: Any) -> Any:
    return api.http.post(
        f"/api/v1/units/{unit}/accesses/import",
        query_string={"dry_run": str(dry_run).lower(), **query},
        data=text.encode("utf-8"), content_type="text/csv",
        headers={"Authorization": f"Bearer {api.token}"},
    )


def to_csv(rows: list[dict[str, str]], delimiter: str = ",", bom: bool = False) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" if bom else "") + out.getvalue()


def counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m)) or 0
                     for m in (Account, AccessInvitation, OutboxMessage))


def test_round_trip_export_import_into_an_empty_unit_export_again(
    app: Flask, client: FlaskClient, acme: dict[str, str]
) -> None:
    api = api_for(app, client)
    first = rows_of(api.get(f"/units/{acme['acme']}/accesses/export",
                            query_string={"include_inactive": "true"}))
    assert len(first) == 10
    by_email = {r["email"]: r for r in first}
    # a phone number starts with + like a formula: defused too, undone on import
    assert by_email["p2@acme.example"]["mobile"] == "'+4930123456"
    assert by_email["p3@acme.example"]["permission_groups"] == "buyers"
    assert by_email["p6@acme.example"]["platform_access"] == "no"
    assert by_email["p8@contractor.example"]["notifications"] == "invoice.issued"
    assert by_email["p4@acme.example"]["status"] == "suspended"
    # the suspended access is no one to onboard: the active ones go into New
    active = [r for r in first if r["status"] == "active"]
    resp = post_csv(api, acme["new"], to_csv(active))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    report = resp.get_json()
    assert report["counts"]["created"] == 9 and report["counts"]["error"] == 0
    assert {i["code"] for i in report["items"]} == {"linked"}
    again = rows_of(api.get(f"/units/{acme['new']}/accesses/export"))

    def key(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
        return [tuple(r[c] for c in COMPARED) for r in rows]

    assert sorted(key(again)) == sorted(key(active))
    assert again[0]["created_at"] != "" and list(again[0]) == list(first[0])


def test_a_round_trip_through_the_cli_with_new_people(
    app: Flask, acme: dict[str, str], tmp_path: Any
) -> None:
    runner = app.test_cli_runner()
    source = tmp_path / "new.csv"
    source.write_text("email;given_name;family_name;roles;permission_groups;platform_access\r\n"
                      "Neu@New.example;Nina;Neu;employee;buyers;ja\r\n"
                      "nope@new.example;Nils;Nope;operational_contact;;nein\r\n",
                      encoding="utf-8-sig")
    result = runner.invoke(main, ["accesses", "import", "--unit", "new", str(source)])
    assert result.exit_code == 0, result.output
    assert "created: 2" in result.output
    out = runner.invoke(main, ["accesses", "export", "--unit", "new", "--dialect", "excel-de",
                               "--columns", "email,roles,permission_groups,platform_access,"
                               "status"])
    assert out.exit_code == 0, out.output
    assert out.stdout_bytes.startswith("\ufeff".encode())
    rows = sorted(parse(out.stdout_bytes.decode("utf-8-sig"), ";"), key=lambda r: r["email"])
    assert rows == [
        {"email": "neu@new.example", "roles": "employee", "permission_groups": "buyers",
         "platform_access": "yes", "status": "invited"},
        {"email": "nope@new.example", "roles": "operational_contact", "permission_groups": "",
         "platform_access": "no", "status": "active"},
    ]
    again = runner.invoke(main, ["accesses", "import", "--unit", "new", str(source), "--json"])
    assert again.exit_code == 0, again.output
    lines = [line for line in again.output.splitlines() if line.startswith("{")]
    assert '"unchanged": 2' in lines[-1]
    bad = runner.invoke(main, ["accesses", "export", "--unit", "new", "--columns", "email,pin"])
    assert bad.exit_code != 0 and "'pin' is not a column" in bad.output


def test_formulas_are_defused_on_export_and_undone_on_import(
    app: Flask, client: FlaskClient, acme: dict[str, str]
) -> None:
    api = api_for(app, client)
    evil = ["=HYPERLINK(\"http://x\")", "+49", "-2+3", "@SUM(A1)"]
    text = to_csv([{"email": f"f{i}@new.example", "given_name": name, "family_name": "Safe",
                    "roles": "employee"} for i, name in enumerate(evil)])
    resp = post_csv(api, acme["new"], text)
    assert resp.get_json()["counts"]["created"] == 4, resp.get_json()
    with app.app_context():
        stored = dict(db.session.execute(
            select(Account.email, Account.given_name).where(Account.email.like("f%@new.example"))
        ).all())
    assert stored["f0@new.example"] == evil[0] and stored["f1@new.example"] == "+49"
    exported = rows_of(api.get(f"/units/{acme['new']}/accesses/export",
                               query_string={"columns": "email,given_name"}))
    names = {r["email"]: r["given_name"] for r in exported}
    assert names["f0@new.example"] == "'" + evil[0]
    assert names["f1@new.example"] == "'+49" and names["f2@new.example"] == "'-2+3"
    assert names["f3@new.example"] == "'@SUM(A1)"
    assert all(v.startswith("'") for v in names.values())
    # names cannot hold a tab or CR (refused), but any cell starting so is defused
    assert spreadsheet.defuse("\tx") == "'\tx" and spreadsheet.defuse("\rx") == "'\rx"
    assert spreadsheet.defuse("a=b") == "a=b" and spreadsheet.defuse("") == ""
    # the defused file imports back to the same values (into another unit: linked)
    assert spreadsheet.undefuse("'=1") == "=1" and spreadsheet.undefuse("'plain") == "'plain"
    back = post_csv(api, acme["globex"], to_csv([
        {"email": r["email"], "given_name": r["given_name"], "family_name": "Safe",
         "roles": "employee"} for r in exported]), dry_run=True)
    assert back.get_json()["counts"]["created"] == 4


FILTERS: list[dict[str, str]] = [
    {"status": "suspended"},
    {"status": "active"},
    {"role": "main_user"},
    {"permission_group": "buyers"},
    {"email_domain": "contractor.example"},
    {"q": "zed"},
    {"q": "p1"},
    {"signed_in_before": (NOW - timedelta(days=30)).isoformat()},
    {"signed_in_after": (NOW - timedelta(days=30)).isoformat()},
    {"never_signed_in": "true"},
    {"include_sub_units": "true"},
]


@pytest.mark.parametrize("query", FILTERS, ids=[next(iter(f)) for f in FILTERS])
def test_every_list_filter_applies_to_the_export(
    app: Flask, client: FlaskClient, acme: dict[str, str], query: dict[str, str]
) -> None:
    api = api_for(app, client, "acme")
    listed = api.get(f"/units/{acme['acme']}/accesses",
                     query_string={**query, "limit": 200}).get_json()["items"]
    exported = rows_of(api.get(f"/units/{acme['acme']}/accesses/export",
                               query_string={**query, "include_inactive": "true"}))
    assert sorted(r["email"] for r in exported) == [i["email"] for i in listed]
    assert 0 < len(exported) < 11 or "include_sub_units" in query


def test_the_export_options(app: Flask, client: FlaskClient, acme: dict[str, str]) -> None:
    api = api_for(app, client, "acme")
    path = f"/units/{acme['acme']}/accesses/export"
    default = rows_of(api.get(path))
    assert "p4@acme.example" not in {r["email"] for r in default} and len(default) == 9
    sent = rows_of(api.get(path, query_string={"only_details_sent": "true"}))
    assert sorted(r["email"] for r in sent) == ["p1@acme.example", "p2@acme.example"]
    chosen = rows_of(api.get(path, query_string={"columns": "status,email,id"}))
    assert list(chosen[0]) == ["status", "email", "id"]
    assert_problem(api.get(path, query_string={"columns": "email,password"}), 422,
                   "unknown_column")
    assert_problem(api.get(path, query_string={"dialect": "lotus"}), 422)
    # the password status: staff reset p1's password; the column says so, never more
    with app.app_context():
        from idp.factors import passwords

        passwords.set_unit_policy("acme", True, "test")
    listed = api.get(f"/units/{acme['acme']}/accesses", query_string={"q": "p1@"})
    p1 = listed.get_json()["items"][0]["id"]
    assert api.post(f"/units/{acme['acme']}/accesses/{p1}/reset-password").status_code == 200
    with_status = rows_of(api.get(path, query_string={
        "password_status": "true", "columns": "email", "only_details_sent": "true"}))
    assert sorted((r["email"], r["password_status"]) for r in with_status) == [
        ("p1@acme.example", "reset_by_staff"), ("p2@acme.example", "")]
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "accesses.exported")).all()
        assert [e.details["rows"] for e in events] == [9, 2, 9, 2]
        event = events[1]
        assert event.details["filters"] == {"only_details_sent": True}
        assert event.details["complete"] is True and event.actor_kind == "client"


def test_a_dry_run_writes_nothing_and_reports_what_would_happen(
    app: Flask, client: FlaskClient, acme: dict[str, str]
) -> None:
    api = api_for(app, client)
    text = ("email,given_name,family_name,roles\n"
            "a@new.example,A,Aa,employee\nb@new.example,B,Bb,employee\n")
    before = api.get(f"/units/{acme['new']}/accesses").get_json()["total"]
    stored = counts(app)
    report = post_csv(api, acme["new"], text, dry_run=True).get_json()
    assert report["dry_run"] is True and report["counts"]["created"] == 2
    assert api.get(f"/units/{acme['new']}/accesses").get_json()["total"] == before == 0
    assert counts(app) == stored
    real = post_csv(api, acme["new"], text).get_json()
    assert real["counts"]["created"] == 2
    assert api.get(f"/units/{acme['new']}/accesses").get_json()["total"] == 2


def test_per_row_errors_name_the_row_column_and_code(
    app: Flask, client: FlaskClient, acme: dict[str, str]
) -> None:
    api = api_for(app, client)
    text = ("email,given_name,family_name,roles,permission_groups,platform_access,mobile,"
            "notifications,status\n"
            "ok@new.example,Ok,Fine,employee,,yes,,,active\n"        # 2
            "not-an-address,Bad,Mail,employee,,yes,,,\n"              # 3
            "r@new.example,R,Role,emperor,,yes,,,\n"                  # 4
            "OK@new.example,Dup,Licate,employee,,yes,,,\n"            # 5
            "g@new.example,G,Group,employee,sellers,yes,,,\n"         # 6
            "n@new.example,,Noname,employee,,yes,,,\n"                # 7
            "m@new.example,M,Mobile,employee,,yes,12,,\n"             # 8
            "e@new.example,E,Event,employee,,yes,,no.such.event,\n"   # 9
            "p@new.example,P,Access,employee,,maybe,,,\n"             # 10
            "p1@acme.example,,,employee,,yes,,,\n")                   # 11: linked
    for dry_run in (True, False):
        report = post_csv(api, acme["new"], text, dry_run=dry_run).get_json()
        errors = {(i["row"], i["column"], i["code"]) for i in report["items"]
                  if i["outcome"] == "error"}
        assert errors == {
            (3, "email", "invalid_email"), (4, "roles", "invalid_role"),
            (5, "email", "duplicate_email"), (6, "permission_groups", "invalid_group"),
            (7, "given_name", "required"), (8, "mobile", "invalid_mobile"),
            (9, "notifications", "unknown_event"), (10, "platform_access", "invalid_value"),
        }, report
        assert report["counts"] == {"created": 2, "invited": 0, "unchanged": 0, "error": 8}
        assert all(i["message"] for i in report["items"] if i["outcome"] == "error")
    with app.app_context():
        audited = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "accesses.imported")).all()
        assert [e.details["dry_run"] for e in audited] == [True, False]
        assert audited[1].details["errors"]["invalid_email"] == 1
    # a file that cannot be read as a whole is refused before any row
    assert_problem(post_csv(api, acme["new"], "email,pin\nx@new.example,1\n"), 422,
                   "unknown_column")
    assert_problem(post_csv(api, acme["new"], "given_name\nX\n"), 422, "no_email_column")
    resp = api.http.post(f"/api/v1/units/{acme['new']}/accesses/import", json={"a": 1},
                         headers={"Authorization": f"Bearer {api.token}"})
    assert_problem(resp, 415)


def test_a_second_run_changes_nothing_and_invites_nobody_twice(
    app: Flask, client: FlaskClient, acme: dict[str, str]
) -> None:
    api = api_for(app, client)
    text = ("email,given_name,family_name,roles,mobile\n"
            "x@new.example,X,Ex,employee,+49 30 1234567\n"
            "y@new.example,Y,Why,operational_contact,\n")
    first = post_csv(api, acme["new"], text).get_json()
    assert first["counts"]["created"] == 2 and first["items"] == []
    stored = counts(app)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AccessInvitation)) == 2
    second = post_csv(api, acme["new"], text).get_json()
    assert second["counts"] == {"created": 0, "invited": 0, "unchanged": 2, "error": 0}
    assert counts(app) == stored
    # a file that says otherwise leaves the access as it is, and says so
    changed = post_csv(api, acme["new"], text.replace("operational_contact", "employee"))
    item = changed.get_json()["items"][0]
    assert (item["row"], item["outcome"], item["code"], item["column"]) == (
        3, "unchanged", "differs", "roles")
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "accesses.imported")).all()
        assert [e.details["counts"]["created"] for e in events] == [2, 0, 0]


def test_bom_and_semicolons_are_read(app: Flask, client: FlaskClient,
                                     acme: dict[str, str]) -> None:
    api = api_for(app, client)
    rows = [{"email": "semi@new.example", "given_name": "Se", "family_name": "Mi",
             "roles": "employee,operational_contact", "platform_access": "no"}]
    report = post_csv(api, acme["new"], to_csv(rows, ";", bom=True)).get_json()
    assert report["counts"]["created"] == 1, report
    out = api.get(f"/units/{acme['new']}/accesses/export", query_string={
        "dialect": "excel-de", "columns": "email,roles,platform_access"})
    text = out.get_data().decode("utf-8")
    assert text.startswith("\ufeffemail;roles;platform_access\r\n")
    assert parse(text[1:], ";") == [{"email": "semi@new.example",
                                     "roles": "employee,operational_contact",
                                     "platform_access": "no"}]


def test_another_units_admin_gets_404_and_an_employee_403(
    app: Flask, client: FlaskClient, acme: dict[str, str]
) -> None:
    globex = api_for(app, client, "globex")
    assert_problem(globex.get(f"/units/{acme['acme']}/accesses/export"), 404)
    assert_problem(post_csv(globex, acme["acme"], "email\nz@acme.example\n"), 404)
    page = sign_in_to_dashboard(app, client, "p1@acme.example")
    headers = {"X-CSRF-Token": csrf_token(page.get_data(as_text=True))}
    assert_problem(client.get(f"/api/v1/units/{acme['acme']}/accesses/export"), 403)
    resp = client.post(f"/api/v1/units/{acme['acme']}/accesses/import", headers=headers,
                       data=b"email\nz@acme.example\n", content_type="text/csv")
    assert_problem(resp, 403)


class TestTheSendBudget:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"invitations_per_unit_hour": 2}

    def test_telling_that_an_unseen_address_has_an_account_costs_a_send(
        self, app: Flask, client: FlaskClient, acme: dict[str, str]
    ) -> None:
        """A file of guessed addresses probes no faster than invitations go out: each
        ``person_exists`` answer spends one send, dry runs too; then
        ``too_many_lookups``."""
        from tests.support.oidc import make_account

        for n in range(3):
            make_account(app, f"known{n}@elsewhere.example")
        text = "email,given_name,family_name\n" + "".join(
            f"known{n}@elsewhere.example,K,N{n}\n" for n in range(3))
        report = post_csv(api_for(app, client, "new"), acme["new"], text, dry_run=True)
        assert report.status_code == 200, report.get_data(as_text=True)
        codes = [r["code"] for r in report.get_json()["items"]]
        assert codes == ["person_exists", "person_exists", "too_many_lookups"]

    def test_invitations_beyond_the_budget_are_deferred_and_sent_by_a_later_run(
        self, app: Flask, client: FlaskClient, acme: dict[str, str]
    ) -> None:
        api = api_for(app, client)
        text = "email,given_name,family_name\n" + "".join(
            f"b{i}@new.example,B{i},Budget\n" for i in range(3))
        held = post_csv(api, acme["new"], text, invite="false").get_json()
        assert held["counts"]["created"] == 3
        assert {i["code"] for i in held["items"]} == {"invitation_deferred"}
        sent = post_csv(api, acme["new"], text).get_json()
        assert sent["counts"] == {"created": 0, "invited": 2, "unchanged": 1, "error": 0}
        assert sent["items"][-1]["code"] == "invitation_deferred"
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(AccessInvitation)) == 2
        again = post_csv(api, acme["new"], text).get_json()
        assert again["counts"]["invited"] == 0
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(AccessInvitation)) == 2


def _many(app: Flask, unit_id: str, n: int, start: int) -> None:
    with app.app_context():
        made = [Account(email=f"m{start + i:06d}@many.example", email_verified=True,
                        given_name="Many", family_name=f"N{i}") for i in range(n)]
        db.session.add_all(made)
        db.session.flush()
        with atomic():
            for account in made:
                accesses.create(account.id, unit_id, ["employee"], "test", event=None)


def _peak(app: Flask, unit_id: str) -> tuple[int, int]:
    with app.app_context():
        chosen = access_csv.columns(None)
        f = access_csv.export_filter(Filter(unit_ids=frozenset({unit_id})), False, False)
        tracemalloc.start()
        size = 0
        for chunk in access_csv.export(SYSTEM, unit_id, f, chosen, "excel"):
            size += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak, size


def test_the_export_streams_in_constant_memory(
    app: Flask, client: FlaskClient, acme: dict[str, str]
) -> None:
    api = api_for(app, client)
    resp = api.get(f"/units/{acme['new']}/accesses/export")
    assert resp.is_streamed
    _many(app, acme["new"], 600, 0)
    small_peak, small_size = _peak(app, acme["new"])
    _many(app, acme["new"], 3000, 600)
    big_peak, big_size = _peak(app, acme["new"])
    assert big_size > 5 * small_size
    assert big_peak < 2 * small_peak, (small_peak, big_peak)


class TestTheBodyBound:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"csv_import_max_bytes": 2000}

    def test_a_body_over_the_bound_is_413_and_a_keyed_import_replays(
        self, app: Flask, client: FlaskClient, acme: dict[str, str]
    ) -> None:
        api = api_for(app, client)
        big = "email,given_name,family_name\n" + "".join(
            f"big{i:04d}@new.example,Big,Body\n" for i in range(100))
        assert len(big) > 2000
        assert_problem(post_csv(api, acme["new"], big), 413)
        assert api.get(f"/units/{acme['new']}/accesses").get_json()["total"] == 0
        small = "email,given_name,family_name\nk@new.example,K,Key\n"
        key = {"Authorization": f"Bearer {api.token}", "Idempotency-Key": "csv-1"}
        url = f"/api/v1/units/{acme['new']}/accesses/import"
        first = client.post(url, data=small.encode(), content_type="text/csv", headers=key)
        again = client.post(url, data=small.encode(), content_type="text/csv", headers=key)
        assert first.get_json()["counts"]["created"] == 1
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.get_json() == first.get_json()


def test_a_units_admin_links_people_they_see_and_not_others(
    app: Flask, client: FlaskClient, acme: dict[str, str]
) -> None:
    with app.app_context():
        account = Account(email="g0@globex.example", email_verified=True, given_name="G",
                          family_name="Lobex")
        db.session.add(account)
        db.session.flush()
        with atomic():
            accesses.create(account.id, acme["globex"], ["employee"], "test", event=None)
    api = api_for(app, client, "acme")
    text = "email,roles\np1@acme.example,employee\ng0@globex.example,employee\n"
    report = post_csv(api, acme["sales"], text).get_json()
    assert [(i["row"], i["outcome"], i["code"]) for i in report["items"]] == [
        (2, "created", "linked"), (3, "error", "person_exists")]

