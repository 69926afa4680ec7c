"""The administration API's everyday journey over real HTTP against the real server
(issue 12, Tests): the operator creates a customer and its admin client; the
customer's admin invites a new contact, who registers through the e-mail link and
the SMS code (a local HTTP gateway receives the SMS) in their own browser session;
the admin links an existing user, changes roles, suspends and removes; the operator
deletes the customer with everything it has, and the customer's client stops
working."""

from __future__ import annotations

import re

import pytest
import requests
from flask import Flask

from idp.accounts import lifecycle as accounts
from idp.mail.outbox import courier, open_body
from idp.store import outbox_repo
from tests.support.api import make_admin_client
from tests.support.live import LiveServer
from tests.support.login import CSRF_RE
from tests.support.sms import SmsReceiver

SMS_CODE_RE = re.compile(r": ([A-Z0-9]{8})$")


@pytest.fixture
def settings_overrides(live_port: int, gateway: SmsReceiver) -> dict[str, object]:
    return {"issuer": f"http://127.0.0.1:{live_port}", "sms_url": gateway.url}


class Http:
    """``/api/v1`` over real HTTP with a client-credentials token."""

    def __init__(self, base: str, client_id: str, secret: str) -> None:
        self.base = base
        resp = requests.post(
            base + "/token", data={"grant_type": "client_credentials", "scope": "admin"},
            auth=(client_id, secret), timeout=10,
        )
        assert resp.status_code == 200, resp.text
        self.headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}

    def __call__(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(
            method, self.base + "/api/v1" + path, headers=self.headers, timeout=30,
            **kwargs,  # type: ignore[arg-type]
        )


def _mail_link(app: Flask, email: str, base: str) -> str:
    courier(app).drain()
    with app.app_context():
        for message in outbox_repo.recent(50):
            body = open_body(message) if message.payload.get("to") == email else None
            if body:
                found = re.search(re.escape(base) + r"/invitation/[A-Za-z0-9_\-]+", body["text"])
                if found:
                    return found.group(0)
    raise AssertionError(f"no invitation to {email}")


def _csrf(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, html[:500]
    return found.group(1)


@pytest.mark.slow
def test_the_everyday_journey_over_real_http(
    app: Flask, live_server: LiveServer, gateway: SmsReceiver
) -> None:
    base = live_server.url
    root = make_admin_client(app)
    operator = Http(base, root.client_id, root.secret)

    # the operator creates the customer and a client that acts for it
    made = operator("POST", "/customers", json={
        "kind": "company", "name": "Initech", "vat_id": "DE123456789",
        "address": {"street": "Main St 1", "postal_code": "10115", "city": "Berlin",
                    "country": "DE"},
    })
    assert made.status_code == 201, made.text
    customer = made.json()["id"]
    mine = make_admin_client(app, customer)
    admin = Http(base, mine.client_id, mine.secret)

    # a new contact with platform access and a mobile number: invitation and SMS
    contact = admin("POST", f"/units/{customer}/contacts", json={
        "email": "nina@initech.example", "given_name": "Nina", "family_name": "Neu",
        "mobile": "+49 151 2345 6789", "roles": ["main_user"], "platform_access": True,
    })
    assert contact.status_code == 201, contact.text
    nina = contact.json()
    assert nina["status"] == "invited"
    link = _mail_link(app, "nina@initech.example", base)
    code = SMS_CODE_RE.search(gateway.wait_for(1)[0].json()["text"])
    assert code

    # Nina registers in her own browser: link, SMS code, wallet form, dashboard
    browser = requests.Session()
    page = browser.get(link, timeout=10)
    assert page.status_code == 200 and 'name="code"' in page.text
    resp = browser.post(link, data={"csrf_token": _csrf(page.text), "code": code.group(1)},
                        timeout=10)
    assert resp.status_code == 200 and 'name="family_name"' in resp.text, resp.url
    resp = browser.post(resp.url, data={"csrf_token": _csrf(resp.text), "given_name": "Nina",
                                        "family_name": "Neumann"}, timeout=10)
    assert resp.status_code == 200 and resp.url == base + "/account", resp.url
    got = admin("GET", f"/units/{customer}/accesses/{nina['access_id']}").json()
    assert got["status"] == "active"

    # an existing Unitgate user, already a member elsewhere under the operator's care,
    # is linked (no second account) by the operator's client
    with app.app_context():
        before = accounts.by_email("nina@initech.example")
        assert before is not None
    sub = operator("POST", "/customers", json={"kind": "company", "name": "Globex"}).json()
    linked = operator("POST", f"/units/{sub['id']}/accesses", json={
        "email": "nina@initech.example", "roles": ["employee"],
    })
    assert linked.status_code == 201, linked.text
    assert linked.json()["account_id"] == nina["account_id"]

    # roles change, suspend, reactivate, remove (Nina stays the last main user)
    omar = admin("POST", f"/units/{customer}/contacts", json={
        "email": "omar@initech.example", "given_name": "Omar", "family_name": "O",
        "roles": ["employee"], "platform_access": False,
    }).json()
    path = f"/units/{customer}/accesses/{omar['access_id']}"
    changed = admin("PATCH", path, json={"roles": ["employee", "operational_contact"],
                                         "platform_access": True})
    assert changed.status_code == 200, changed.text
    assert sorted(changed.json()["roles"]) == ["employee", "operational_contact"]
    assert admin("POST", path + "/suspend").json()["status"] == "suspended"
    assert admin("POST", path + "/reactivate").json()["status"] == "active"
    last = admin("POST", f"/units/{customer}/accesses/{nina['access_id']}/suspend")
    assert last.status_code == 422 and last.json()["code"] == "last_main_user"
    assert admin("DELETE", path).status_code == 204
    assert admin("GET", path).status_code == 404

    # the operator deletes the customer with everything it has; the people stay
    refused = operator("DELETE", f"/customers/{customer}", json={"confirm": "Initec"})
    assert refused.status_code == 422 and refused.json()["code"] == "confirmation_required"
    gone = operator("DELETE", f"/customers/{customer}", json={"confirm": "Initech"})
    assert gone.status_code == 200, gone.text
    assert gone.json()["removed"]["accesses"] == 1  # Nina's; Omar's was removed before
    assert operator("GET", f"/customers/{customer}").status_code == 404
    assert admin("GET", "/me").status_code == 401  # its client went with it
    with app.app_context():
        assert accounts.by_email("nina@initech.example") is not None
    still = operator("GET", f"/units/{sub['id']}/accesses").json()
    assert [a["email"] for a in still["items"]] == ["nina@initech.example"]
