"""The console's pages of a unit's integrations and policies (issue 14): domains with
their DNS record and a real check against the test DNS server, SSO connectors with a
guided set-up and a connection test through the real upstream provider (that signs
nobody in), SCIM tokens shown once, the LDAP page, webhooks and their deliveries,
the audit log, the sign-in policies, budgets, approvals and purchases.

Every page: the unit's admin sees it, another unit's admin gets 404, an employee 403;
every form refuses a POST without the CSRF token and answers 303."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp import webhooks
from idp.accounts import accesses
from idp.provisioning import scim_tokens
from idp.store.db import db
from idp.store.models import (
    Account,
    AuditEvent,
    Connector,
    Domain,
    ScimToken,
    Session,
    Unit,
    UpstreamIdentity,
    WebhookDelivery,
    WebhookEndpoint,
)
from idp.store.unit_of_work import atomic
from tests.support.dns import DnsServer
from tests.support.login import csrf_token
from tests.support.oidc import make_account, make_unit, start_session
from tests.support.upstream import Upstream

PAGES = (
    "domains",
    "sso",
    "scim",
    "ldap",
    "webhooks",
    "audit",
    "policies",
    "budgets",
    "approvals",
    "purchases",
)
# (path below the unit, form data) of a write on each page
FORMS = (
    ("domains", {"domain": "acme.example"}),
    ("scim", {"name": "HR"}),
    ("webhooks", {"url": "https://hooks.example/in"}),
    ("policies", {"require_totp": "1"}),
    ("budgets", {"scope": "unit", "period": "month", "amount": "100.00", "currency": "EUR"}),
    ("sso/new/oidc", {"issuer": "https://login.example", "client_id": "c", "client_secret": "s"}),
)


@pytest.fixture
def settings_overrides(dns_server: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 0.5}


@pytest.fixture
def people(app: Flask) -> dict[str, str]:
    """Ada administers Acme (main user), Eve is an employee there, Olga administers
    another company."""
    ada = make_account(app, "ada@acme.example")
    acme = make_unit(app, ada, "Acme", roles=["main_user"])
    eve = make_account(app, "eve@acme.example")
    with app.app_context(), atomic():
        accesses.create(eve, acme, ["employee"], "test", event=None)
    olga = make_account(app, "olga@other.example")
    other = make_unit(app, olga, "Other", roles=["main_user"])
    return {"ada": ada, "eve": eve, "olga": olga, "acme": acme, "other": other}


@pytest.fixture
def web(app: Flask, client: FlaskClient, people: dict[str, str]) -> FlaskClient:
    """Ada's browser: the unit's admin, signed in."""
    start_session(app, client, people["ada"])
    return client


def as_(app: Flask, client: FlaskClient, account: str) -> FlaskClient:
    start_session(app, client, account)
    return client


def post(client: FlaskClient, page: str, action: str, data: dict[str, str]) -> Any:
    """A form POST with the page's CSRF token."""
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **data})


def shown_once(web: FlaskClient, page: str, data: dict[str, str], field: str, prefix: str) -> str:
    """Create something whose secret the page shows once (in the input ``field``):
    the page after the 303 shows it and is not cached, the next one no longer."""
    assert post(web, page, page, data).status_code == 303
    first = web.get(page)
    assert first.headers["Cache-Control"] == "no-store"
    found = re.search(
        rf'id="{field}" type="text" readonly value="([^"]+)"', first.get_data(as_text=True)
    )
    assert found is not None and found.group(1).startswith(prefix)
    assert found.group(1) not in web.get(page).get_data(as_text=True)
    return found.group(1)


def count(app: Flask, model: type, **where: Any) -> int:
    with app.app_context():
        return db.session.query(model).filter_by(**where).count()


@pytest.mark.parametrize("name", PAGES)
def test_each_page_for_its_admin_404_for_another_unit_403_for_an_employee(
    app: Flask, client: FlaskClient, people: dict[str, str], name: str
) -> None:
    url = f"/admin/units/{people['acme']}/{name}"
    resp = as_(app, client, people["ada"]).get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)[-500:]
    assert "<h1>" in resp.get_data(as_text=True)
    assert as_(app, client, people["olga"]).get(url).status_code == 404
    assert as_(app, client, people["eve"]).get(url).status_code == 403
    client.delete_cookie("ug_session", domain="localhost")
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 303  # to the sign-in


@pytest.mark.parametrize(("path", "data"), FORMS)
def test_every_form_refuses_a_post_without_csrf_and_answers_303(
    app: Flask, client: FlaskClient, people: dict[str, str], path: str, data: dict[str, str]
) -> None:
    base = f"/admin/units/{people['acme']}/{path}"
    page = base if not path.startswith("sso/") else f"/admin/units/{people['acme']}/sso/new/oidc"
    web = as_(app, client, people["ada"])
    events = count(app, AuditEvent)
    assert web.post(base, data=data).status_code == 400
    assert count(app, AuditEvent) == events
    resp = post(web, page, base, data)
    assert resp.status_code == 303
    # the other unit's admin cannot post into Acme even with a valid token
    olga = as_(app, app.test_client(), people["olga"])
    token = csrf_token(
        olga.get(
            f"/admin/units/{people['other']}/{path}"
            if not path.startswith("sso/")
            else f"/admin/units/{people['other']}/sso/new/oidc"
        ).get_data(as_text=True)
    )
    assert olga.post(base, data={"csrf_token": token, **data}).status_code == 404


def test_a_domain_is_added_shows_its_record_and_is_verified_by_dns(
    app: Flask, client: FlaskClient, people: dict[str, str], dns_server: DnsServer, web: FlaskClient
) -> None:
    page = f"/admin/units/{people['acme']}/domains"
    resp = post(web, page, page, {"domain": "acme.example"})
    assert resp.status_code == 303
    html = web.get(page).get_data(as_text=True)
    assert "acme.example was added" in html
    assert 'value="_unitgate-challenge.acme.example"' in html
    with app.app_context():
        row = db.session.query(Domain).filter_by(name="acme.example").one()
        challenge, domain_id = row.challenge, row.id
    assert f'value="{challenge}"' in html and 'data-state="pending"' in html
    check = f"{page}/acme.example/check"
    post(web, page, check, {})
    assert "was not found yet" in web.get(page).get_data(as_text=True)
    dns_server.set_txt("_unitgate-challenge.acme.example", challenge)
    assert post(web, page, check, {}).headers["Location"].endswith(f"#domain-{domain_id}")
    html = web.get(page).get_data(as_text=True)
    assert "acme.example is verified" in html and 'data-state="verified"' in html
    with app.app_context():
        assert db.session.get(Domain, domain_id).state == "verified"
    # refusals come back as an error summary with the value typed
    post(web, page, page, {"domain": "gmail.com"})
    html = web.get(page).get_data(as_text=True)
    assert "error-summary" in html and "public mail provider" in html
    # another unit's admin cannot check, change or remove Acme's claim
    olga = as_(app, app.test_client(), people["olga"])
    other = f"/admin/units/{people['other']}/domains"
    for action in ("check", "remove", "rules"):
        token = csrf_token(olga.get(other).get_data(as_text=True))
        assert (
            olga.post(
                f"{other}/acme.example/{action}", data={"csrf_token": token, "confirm": "yes"}
            ).status_code
            == 404
        )
    # removal needs the confirmation box
    remove = f"{page}/acme.example/remove"
    post(web, page, remove, {})
    assert count(app, Domain, name="acme.example") == 1
    post(web, page, remove, {"confirm": "yes"})
    assert count(app, Domain, name="acme.example") == 0


def set_up_oidc(web: FlaskClient, unit: str, upstream: Upstream) -> tuple[str, str]:
    """The guided set-up of a generic OIDC connector: the redirect URI the page shows
    is registered at the upstream, its client id and secret typed in; returns the
    connector's id and page."""
    new = f"/admin/units/{unit}/sso/new/oidc"
    html = web.get(new).get_data(as_text=True)
    found = re.search(r'name="connector_id" value="([0-9a-f]{32})"', html)
    assert found is not None
    cid = found.group(1)
    redirect_uri = f"http://localhost/federation/{cid}/callback"  # the tests' issuer
    assert f'value="{redirect_uri}"' in html
    client_id, secret = upstream.register_client(upstream.plain_issuer, redirect_uri)
    data = {
        "connector_id": cid,
        "issuer": upstream.plain_issuer,
        "client_id": client_id,
        "client_secret": secret,
        "name": "Acme login",
    }
    resp = post(web, new, new, data)
    assert resp.status_code == 303
    page = f"/admin/units/{unit}/sso/{cid}"
    assert urlsplit(resp.headers["Location"]).path == page
    assert redirect_uri in web.get(page).get_data(as_text=True)
    return cid, page


def test_an_oidc_connector_is_set_up_and_its_test_round_trip_signs_nobody_in(
    app: Flask, client: FlaskClient, people: dict[str, str], upstream: Upstream, web: FlaskClient
) -> None:
    cid, page = set_up_oidc(web, people["acme"], upstream)
    accounts, sessions = count(app, Account), count(app, Session)
    resp = post(web, page, f"{page}/test", {})
    assert resp.status_code == 303 and resp.headers["Location"].startswith(upstream.plain_issuer)
    upstream.login_as(
        "p-tester", {"email": "tester@acme.example", "email_verified": True, "given_name": "Tess"}
    )
    back = urlsplit(upstream.authorize(resp.headers["Location"]))
    assert back.path == f"/federation/{cid}/callback"
    done = web.get(f"{back.path}?{back.query}")
    assert done.status_code == 303 and urlsplit(done.headers["Location"]).path == page
    result = done.headers["Location"]
    html = web.get(result).get_data(as_text=True)
    assert "The connection works" in html and "p-tester" in html
    assert "tester@acme.example" in html and "Tess" in html
    # nobody was signed in, created or linked; the admin is still herself
    assert count(app, Account) == accounts and count(app, Session) == sessions
    assert count(app, UpstreamIdentity) == 0
    assert web.get(f"/admin/units/{people['acme']}/sso").status_code == 200
    # the result is the starter's only
    olga = as_(app, app.test_client(), people["olga"])
    assert olga.get(result).status_code == 404
    # the same callback replayed is refused (state is one-time)
    assert web.get(f"{back.path}?{back.query}").status_code == 400
    with app.app_context():
        assert db.session.get(Connector, cid).unit_id == people["acme"]
        actions = {e.action for e in db.session.query(AuditEvent).all()}
    assert "connector.create" in actions


def test_a_failed_connection_test_says_why(
    app: Flask, client: FlaskClient, people: dict[str, str], upstream: Upstream, web: FlaskClient
) -> None:
    _cid, page = set_up_oidc(web, people["acme"], upstream)
    resp = post(web, page, f"{page}/test", {})
    upstream.login_as("p-x", {"email": "x@acme.example", "email_verified": True})
    upstream.tamper(claims={"aud": "someone-else"})
    back = urlsplit(upstream.authorize(resp.headers["Location"]))
    done = web.get(f"{back.path}?{back.query}")
    html = web.get(done.headers["Location"]).get_data(as_text=True)
    assert "The test failed" in html and "The connection works" not in html
    # a made-up result token shows nothing
    html = web.get(f"{page}?result=forged").get_data(as_text=True)
    assert "unknown or expired" in html


def test_a_connector_with_a_bad_issuer_is_refused_with_the_values_kept(
    app: Flask, client: FlaskClient, people: dict[str, str], web: FlaskClient
) -> None:
    new = f"/admin/units/{people['acme']}/sso/new/okta"
    resp = post(
        web, new, new, {"issuer": "http://evil.example", "client_id": "abc", "client_secret": "s"}
    )
    assert resp.status_code == 303
    html = web.get(resp.headers["Location"]).get_data(as_text=True)
    assert "error-summary" in html and 'value="abc"' in html
    assert count(app, Connector) == 0


def test_scim_token_is_shown_once_listed_and_revoked(
    app: Flask, client: FlaskClient, people: dict[str, str], web: FlaskClient
) -> None:
    page = f"/admin/units/{people['acme']}/scim"
    token = shown_once(web, page, {"name": "Personio"}, "new-token", "ugscim_")
    with app.test_request_context("/"):
        assert scim_tokens.authenticate(token) is not None
        row = db.session.query(ScimToken).one()
        row_id = row.id
    html = web.get(page).get_data(as_text=True)
    assert "Revoke Personio" in html and "never" not in html  # its use is shown
    olga = as_(app, app.test_client(), people["olga"])
    other = f"/admin/units/{people['other']}/scim"
    tok = csrf_token(olga.get(other).get_data(as_text=True))
    assert olga.post(f"{other}/{row_id}/revoke", data={"csrf_token": tok}).status_code == 404
    assert post(web, page, f"{page}/{row_id}/revoke", {}).status_code == 303
    with app.test_request_context("/"):
        assert scim_tokens.authenticate(token) is None


@pytest.mark.parametrize("settings_overrides", [{"webhook_allow_private": True}])
def test_webhook_endpoint_delivery_log_redeliver_and_disable(
    app: Flask, client: FlaskClient, people: dict[str, str], web: FlaskClient
) -> None:
    page = f"/admin/units/{people['acme']}/webhooks"
    shown_once(web, page, {"url": "http://127.0.0.1:9/hook"}, "new-secret", "whsec_")
    with app.app_context():
        endpoint = db.session.query(WebhookEndpoint).one()
        with atomic():
            webhooks.emit(
                unit_id=people["acme"],
                event_type="ldap.synced",
                data={
                    "directory_id": "d",
                    "unit_id": people["acme"],
                    "created": 1,
                    "updated": 0,
                    "deactivated": 0,
                    "reactivated": 0,
                },
            )
        delivery = db.session.query(WebhookDelivery).one()
        ids = endpoint.id, delivery.id
    log = f"{page}/{ids[0]}"
    html = web.get(log).get_data(as_text=True)
    assert "ldap.synced" in html and ids[1] in html
    assert post(web, log, f"{log}/deliveries/{ids[1]}/redeliver", {}).status_code == 303
    assert count(app, AuditEvent, action="webhook.redeliver") == 1
    post(web, page, f"{page}/{ids[0]}/state", {"enabled": "0"})
    with app.app_context():
        assert db.session.get(WebhookEndpoint, ids[0]).enabled is False
    olga = as_(app, app.test_client(), people["olga"])
    assert olga.get(f"/admin/units/{people['other']}/webhooks/{ids[0]}").status_code == 404


def test_a_private_webhook_address_is_refused_with_an_error(
    app: Flask, client: FlaskClient, people: dict[str, str], web: FlaskClient
) -> None:
    page = f"/admin/units/{people['acme']}/webhooks"
    post(web, page, page, {"url": "http://127.0.0.1:9/hook", "description": "x"})
    html = web.get(page).get_data(as_text=True)
    assert "error-summary" in html and count(app, WebhookEndpoint) == 0


def test_audit_log_shows_the_units_events_filtered_and_not_another_units(
    app: Flask, client: FlaskClient, people: dict[str, str], web: FlaskClient
) -> None:
    page = f"/admin/units/{people['acme']}/domains"
    post(web, page, page, {"domain": "acme.example"})
    olga = as_(app, app.test_client(), people["olga"])
    other = f"/admin/units/{people['other']}/domains"
    post(olga, other, other, {"domain": "other.example"})
    audit = f"/admin/units/{people['acme']}/audit"
    html = web.get(audit).get_data(as_text=True)
    assert "domain.claim" in html and "acme.example" in html and "other.example" not in html
    html = web.get(audit + "?action=scim.").get_data(as_text=True)
    assert "domain.claim" not in html
    html = web.get(audit + "?since=yesterday").get_data(as_text=True)
    assert "error-summary" in html


def test_policies_are_saved_through_their_services(
    app: Flask, client: FlaskClient, people: dict[str, str], web: FlaskClient
) -> None:
    page = f"/admin/units/{people['acme']}/policies"
    assert (
        post(
            web, page, page, {"fresh_code_every_sign_in": "1", "passwords_allowed": "1"}
        ).status_code
        == 303
    )
    with app.app_context():
        unit = db.session.get(Unit, people["acme"])
        assert unit.fresh_code_every_sign_in and unit.passwords_allowed
        assert not unit.require_totp and not unit.notify_impersonation
    assert count(app, AuditEvent, action="unit.policy") == 3  # notify was on: now off
    html = web.get(page).get_data(as_text=True)
    assert re.search(r'id="passwords_allowed" name="passwords_allowed" value="1" checked', html)
    assert not re.search(r'id="require_totp" name="require_totp" value="1" checked', html)
    # requiring TOTP applies to the admin too: her session without TOTP stops counting
    post(web, page, page, {"require_totp": "1"})
    with app.app_context():
        assert db.session.get(Unit, people["acme"]).require_totp
    assert web.get(page).status_code == 303


def test_budgets_approvals_and_purchases(
    app: Flask, client: FlaskClient, people: dict[str, str]
) -> None:
    from tests.support.purchases import Shop, merchant, token

    web = as_(app, client, people["ada"])
    page = f"/admin/units/{people['acme']}/budgets"
    assert (
        post(
            web,
            page,
            page,
            {
                "scope": "role",
                "subject": "employee",
                "period": "month",
                "amount": "100.00",
                "per_order": "50.00",
                "currency": "EUR",
            },
        ).status_code
        == 303
    )
    html = web.get(page).get_data(as_text=True)
    assert "€100.00" in html and "employee" in html
    post(web, page, page, {"scope": "unit", "period": "month", "amount": "-1", "currency": "EUR"})
    assert "error-summary" in web.get(page).get_data(as_text=True)
    shop = Shop(
        app.test_client(),
        token(app, app.test_client(), merchant(app), people["eve"], people["acme"]),
    )
    answer = shop.buy("80.00", order_ref="PO-80").get_json()
    assert answer["status"] == "pending_approval"
    approvals = f"/admin/units/{people['acme']}/approvals"
    html = web.get(approvals).get_data(as_text=True)
    assert "PO-80" in html
    approval_id = answer["approval"]["id"]
    resp = post(web, approvals, f"{approvals}/{approval_id}", {"action": "reject"})
    assert resp.status_code == 303
    assert "Give a reason" in web.get(approvals).get_data(as_text=True)
    post(web, approvals, f"{approvals}/{approval_id}", {"action": "approve"})
    assert "PO-80" not in web.get(approvals).get_data(as_text=True)
    html = web.get(f"/admin/units/{people['acme']}/purchases").get_data(as_text=True)
    assert "PO-80" in html and "approved" in html
    html = web.get(f"/admin/units/{people['acme']}/purchases?status=refused").get_data(as_text=True)
    assert "PO-80" not in html


def test_ldap_page_shows_the_settings_and_the_last_runs_errors_never_the_password(
    app: Flask, people: dict[str, str], web: FlaskClient
) -> None:
    from idp.ldap import directories
    from idp.ldap.plan import SyncSummary
    from idp.store import ldap_repo
    from idp.store.models import utcnow

    page = f"/admin/units/{people['acme']}/ldap"
    assert "has no LDAP directory" in web.get(page).get_data(as_text=True)
    with app.app_context():
        row = directories.create(
            people["acme"],
            directories.DirectorySettings(
                url="ldaps://dc.acme.example",
                bind_dn="cn=sync,dc=acme,dc=example",
                bind_password="s3cret-bind",
                base_dn="ou=people,dc=acme,dc=example",
                schedule_minutes=30,
            ),
        )
        summary = SyncSummary(directory_id=row.id, entries=3, created=1)
        summary.error("uid=zoe: the address zoe@else.example is not in a domain of the unit")
        with atomic():
            ldap_repo.save_run(row.id, utcnow(), summary.as_dict())
    html = web.get(page).get_data(as_text=True)
    assert "ldaps://dc.acme.example" in html and "every 30 minutes" in html
    assert "uid=zoe: the address zoe@else.example" in html and "s3cret-bind" not in html
