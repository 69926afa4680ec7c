"""The administration API's common ground (issue 12, items 1, 2 and 8): the OpenAPI
document, problem details, who may call (admin clients by the client-credentials
grant, the console's session), the one authorisation check, paging, idempotency,
and reading the audit log."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from idp import audit
from idp.accounts import accesses
from idp.rights import admin_clients
from idp.store.db import db
from idp.store.models import Account
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import Api, api_for, assert_problem, client_token, make_admin_client
from tests.support.login import csrf_token, sign_in_to_dashboard


def _units(app: Flask) -> tuple[str, str, str]:
    with app.app_context():
        acme = units.create("ACME", slug="acme")
        sales = units.create("ACME Sales", parent="acme", slug="acme-sales")
        globex = units.create("Globex", slug="globex")
        return acme.id, sales.id, globex.id


def test_the_openapi_document_is_3_1_and_lists_every_endpoint(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    assert "/units/{unit_id}/audit" in doc["paths"] and "/me" in doc["paths"]
    op = doc["paths"]["/units/{unit_id}/audit"]["get"]
    assert op["x-permission"] == "audit.read"
    names = {p["name"] for p in op["parameters"]}
    assert {"unit_id", "limit", "cursor", "actor_kind", "action", "since"} <= names
    ref = op["responses"]["404"]["content"]["application/problem+json"]["schema"]["$ref"]
    assert ref.split("/")[-1] in doc["components"]["schemas"]
    flows = doc["components"]["securitySchemes"]["adminClient"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"].endswith("/token")


def test_without_credentials_the_answer_is_a_401_problem(client: FlaskClient) -> None:
    resp = client.get("/api/v1/me")
    body = assert_problem(resp, 401, "unauthenticated")
    assert body["instance"] == "/api/v1/me"
    assert "Bearer" in resp.headers["WWW-Authenticate"]


def test_unknown_paths_and_methods_under_the_api_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404)
    assert_problem(client.post("/api/v1/me"), 405)


def test_a_forged_or_foreign_token_is_refused(app: Flask, client: FlaskClient) -> None:
    resp = Api(client, "not-a-token").get("/me")
    assert_problem(resp, 401, "invalid_token")
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    # a merchant's client-credentials token is not an admin token
    with app.app_context():
        from idp.release import clients

        merchant, secret = clients.register(
            "Shop", [], scope="profile", grant_types=["client_credentials"], actor="test"
        )
    from tests.support.api import AdminClient

    token = client_token(client, AdminClient(merchant.client_id, secret or ""), scope=None)
    assert_problem(Api(client, token).get("/me"), 401, "invalid_token")


def test_a_token_without_the_admin_scope_is_insufficient(app: Flask, client: FlaskClient) -> None:
    made = make_admin_client(app)
    # asking for a scope the client does not have gives a token without scopes
    token = client_token(client, made, scope="profile")
    assert_problem(Api(client, token).get("/me"), 403, "insufficient_scope")


def test_a_units_client_acts_in_the_unit_and_below_and_sees_others_as_404(
    app: Flask, client: FlaskClient
) -> None:
    acme, sales, globex = _units(app)
    api = api_for(app, client, "acme")
    me = api.get("/me").get_json()
    assert me["kind"] == "client" and me["customers"] == [acme]
    assert api.get(f"/units/{acme}/audit").status_code == 200
    assert api.get(f"/units/{sales}/audit").status_code == 200
    assert_problem(api.get(f"/units/{globex}/audit"), 404, "not_found")
    assert_problem(api.get("/units/no-such-unit/audit"), 404, "not_found")
    # the whole log is the operator's
    assert_problem(api.get("/audit"), 404)


def test_an_employee_session_without_rights_gets_403_and_foreign_units_404(
    app: Flask, client: FlaskClient
) -> None:
    acme, _, globex = _units(app)
    with app.app_context():
        account = Account(
            email="eve@acme.example", email_verified=True, given_name="Eve", family_name="E"
        )
        db.session.add(account)
        db.session.commit()
        with atomic():
            accesses.create(account.id, acme, ["employee"], "test", event=None)
    sign_in_to_dashboard(app, client, "eve@acme.example")
    assert client.get("/api/v1/me").get_json()["kind"] == "account"
    assert_problem(client.get(f"/api/v1/units/{acme}/audit"), 403, "forbidden")
    assert_problem(client.get(f"/api/v1/units/{globex}/audit"), 404, "not_found")


def test_a_deleted_admin_client_is_refused_at_once(app: Flask, client: FlaskClient) -> None:
    made = make_admin_client(app)
    api = Api(client, client_token(client, made))
    assert api.get("/me").status_code == 200
    with app.app_context():
        assert admin_clients.delete(made.client_id, "test")
    assert_problem(api.get("/me"), 401, "invalid_token")


def test_the_audit_log_pages_by_cursor_and_filters(app: Flask, client: FlaskClient) -> None:
    acme, sales, globex = _units(app)
    with app.app_context(), atomic():
        for i in range(5):
            audit.record("test", "probe.sales", target=f"s{i}", unit_id=sales)
        audit.record("test", "probe.globex", target="g", unit_id=globex)
    api = api_for(app, client, "acme")
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2, "action": "probe."}
        if cursor:
            query["cursor"] = cursor
        page = api.get(f"/units/{acme}/audit", query_string=query).get_json()
        seen += [e["target"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"s{i}" for i in range(5)]  # the sub-unit's, none of Globex's
    operator = api_for(app, client)
    everything = operator.get("/audit", query_string={"action": "probe.globex"}).get_json()
    assert [e["target"] for e in everything["items"]] == ["g"]
    assert_problem(api.get(f"/units/{acme}/audit", query_string={"cursor": "!!"}), 400,
                   "invalid_cursor")
    bad = assert_problem(api.get(f"/units/{acme}/audit", query_string={"limit": 0}), 422)
    assert bad["errors"][0]["pointer"] == "/query/limit"
    assert_problem(api.get(f"/units/{acme}/audit", query_string={"colour": "red"}), 422)


def test_an_idempotency_key_replays_per_caller_and_refuses_another_request(
    app: Flask, client: FlaskClient
) -> None:
    """The same key and request: one customer, the first answer again; the same key
    with another body: 422; another caller's same key is theirs alone; a key that is
    no visible ASCII: 400."""
    operator = api_for(app, client)
    key = {"Idempotency-Key": "create-initech-1"}
    body = {"kind": "company", "name": "Initech"}
    first = operator.post("/customers", json=body, headers=key)
    again = operator.post("/customers", json=body, headers=key)
    assert first.status_code == again.status_code == 201, first.get_data(as_text=True)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.get_json() == again.get_json()
    listed = operator.get("/customers", query_string={"q": "Initech"}).get_json()
    assert [c["name"] for c in listed["items"]] == ["Initech"]
    assert_problem(
        operator.post("/customers", json={"kind": "company", "name": "Other"}, headers=key),
        422, "idempotency_key_reused",
    )
    second = api_for(app, client)  # another operator client, same key: a new request
    made = second.post("/customers", json={"kind": "company", "name": "Initrode"}, headers=key)
    assert made.status_code == 201 and "Idempotent-Replayed" not in made.headers
    assert_problem(
        operator.post("/customers", json=body, headers={"Idempotency-Key": "ключ"}),
        400, "invalid_idempotency_key",
    )


def test_a_session_write_needs_the_csrf_header(app: Flask, client: FlaskClient) -> None:
    """The console's session may write only with the page's CSRF token in the
    X-CSRF-Token header: another site can make the browser send the cookie, not the
    header."""
    acme, _, _ = _units(app)
    with app.app_context():
        account = Account(
            email="mia@acme.example", email_verified=True, given_name="Mia", family_name="M"
        )
        db.session.add(account)
        db.session.commit()
        with atomic():
            accesses.create(account.id, acme, ["main_user"], "test", event=None)
    page = sign_in_to_dashboard(app, client, "mia@acme.example")
    body = {"email": "new@acme.example", "given_name": "N", "family_name": "N",
            "roles": ["employee"], "platform_access": False}
    refused = client.post(f"/api/v1/units/{acme}/contacts", json=body)
    assert_problem(refused, 403, "csrf_failed")
    forged = client.post(f"/api/v1/units/{acme}/contacts", json=body,
                         headers={"X-CSRF-Token": "forged"})
    assert_problem(forged, 403, "csrf_failed")
    token = csrf_token(page.get_data(as_text=True))
    made = client.post(f"/api/v1/units/{acme}/contacts", json=body,
                       headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.get_data(as_text=True)
