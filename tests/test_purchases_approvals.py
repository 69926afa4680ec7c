"""Approvals (issue 17, item 3): an order over a limit waits for someone holding
``approvals.decide``; the approver gets an e-mail (a real SMTP server) with a signed
link, signs in, sees the order and the budget left, comments (internal comments never
reach the merchant), changes the amount and approves, or rejects with a reason; the
merchant learns it by polling. Forged links, the buyer and another unit's people see
404; without an approver the order is refused."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.units import registry as units
from tests.support.login import csrf_token, path_of, submit_code, submit_email
from tests.support.purchases import Shop, employee_budget, merchant, person, token
from tests.support.smtp import SmtpSink, code_in, text_of

LINK_RE = re.compile(r"(http://localhost/account/approvals/[0-9a-f]{32}\?link=\S+)")


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


@pytest.fixture
def acme(app: Flask) -> str:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        units.create("Globex", slug="globex")
    employee_budget(app)
    return acme


def _sign_in(web: FlaskClient, smtp: SmtpSink, email: str) -> None:
    """The real dashboard sign-in, the code read from the SMTP server."""
    resp = web.get("/account")
    login = path_of(resp)
    after = len(smtp.messages)
    submit_email(web, login, email)
    resp = submit_code(web, login, code_in(smtp.last_to(email, after=after)))
    assert resp.status_code == 303
    web.get(resp.headers["Location"])


def _link(smtp: SmtpSink, email: str, after: int) -> str:
    found = LINK_RE.search(text_of(smtp.last_to(email, after=after)))
    assert found, "no approval link in the e-mail"
    parts = urlsplit(found.group(1))
    return f"{parts.path}?{parts.query}"


def _post(web: FlaskClient, page: str, **data: str) -> object:
    html = web.get(page).get_data(as_text=True)
    path = page.split("?")[0]
    return web.post(path, data={"csrf_token": csrf_token(html), **data})


def test_an_approver_changes_and_approves_by_the_email_link(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, acme: str
) -> None:
    ann = person(app, "ann@acme.example", acme, ["employee"])
    person(app, "max@acme.example", acme, ["commercial_contact"])
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    after = len(smtp_server.messages)
    lines = [{"sku": "CH-1", "description": "Office chair", "quantity": 1, "amount": "80.00"}]
    answer = shop.buy("80.00", order_ref="PO-80", lines=lines).get_json()
    assert answer["status"] == "pending_approval" and answer["reason"] == "over_per_order_limit"
    assert answer["approval"]["status"] == "pending"
    assert answer["approval"]["url"].endswith(answer["approval"]["id"])
    link = _link(smtp_server, "max@acme.example", after)
    assert answer["approval"]["id"] in link
    # the approver signs in and opens the link
    web = app.test_client()
    _sign_in(web, smtp_server, "max@acme.example")
    page = web.get(link)
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    assert "PO-80" in html and "Office chair" in html and "ann@acme.example" in html
    assert "100.00" in html  # the budget left
    # a forged or another approval's link is 404
    assert web.get(link[:-3] + "xyz").status_code == 404
    assert web.get(link.replace(answer["approval"]["id"], "0" * 32)).status_code == 404
    # comments: internal and for the merchant; rejecting needs a reason
    assert _post(web, link, action="comment", comment="Check the chair model",
                 internal="1").status_code == 303
    assert _post(web, link, action="comment", comment="Approved as cheaper model"
                 ).status_code == 303
    assert _post(web, link, action="reject", reason="").status_code == 422
    resp = _post(web, link, action="approve", amount="70.00")
    assert resp.status_code == 303
    got = shop.get(answer["id"]).get_json()
    assert got["status"] == "approved" and got["amount"] == "70.00"
    assert got["approval"]["status"] == "approved"
    assert [c["body"] for c in got["approval"]["comments"]] == ["Approved as cheaper model"]
    # the reservation was made: 30 are left
    assert shop.buy("30.01").get_json()["status"] == "pending_approval"
    assert shop.post(f"/{answer['id']}/confirm").get_json()["status"] == "confirmed"
    # deciding twice is refused
    assert _post(web, link, action="approve").status_code == 409
    # the buyer cannot decide on their own order; another company's person sees 404
    ann_web = app.test_client()
    _sign_in(ann_web, smtp_server, "ann@acme.example")
    assert ann_web.get(link.split("?")[0]).status_code == 404
    with app.app_context():
        globex = units.find("globex")
        assert globex is not None
        globex_id = globex.id
    person(app, "eve@globex.example", globex_id, ["commercial_contact"])
    eve_web = app.test_client()
    _sign_in(eve_web, smtp_server, "eve@globex.example")
    assert eve_web.get(link.split("?")[0]).status_code == 404


def test_a_rejection_reaches_the_merchant_and_no_approver_means_refused(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, acme: str
) -> None:
    ann = person(app, "ann@acme.example", acme, ["employee"])
    rp = merchant(app)
    shop = Shop(client, token(app, client, rp, ann, acme))
    # nobody may decide yet: refused with the limit's reason
    assert shop.buy("60.00").get_json()["reason"] == "over_per_order_limit"
    # a custom permission group granting approvals.decide makes an approver
    with app.app_context():
        from idp.rights import groups
        groups.set_group("acme", "approvers", ["approvals.decide"])
    person(app, "max@acme.example", acme, ["approvers"])
    after = len(smtp_server.messages)
    answer = shop.buy("60.00").get_json()
    assert answer["status"] == "pending_approval"
    link = _link(smtp_server, "max@acme.example", after)
    web = app.test_client()
    _sign_in(web, smtp_server, "max@acme.example")
    assert _post(web, link, action="reject", reason="Not in this quarter").status_code == 303
    got = shop.get(answer["id"]).get_json()
    assert got["status"] == "refused" and got["reason"] == "rejected"
    assert got["approval"]["decision_reason"] == "Not in this quarter"
    # a pending order the merchant cancels ends its approval
    pending = shop.buy("99.00").get_json()
    assert shop.post(f"/{pending['id']}/cancel").get_json()["status"] == "cancelled"
    assert shop.get(pending["id"]).get_json()["approval"]["status"] == "cancelled"


def test_the_buyers_manager_from_scim_decides(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink
) -> None:
    """HR's SCIM record names the buyer's manager (enterprise ``manager``): the
    manager gets the e-mail and may decide without holding ``approvals.decide``."""
    from idp.provisioning import service as provisioning
    from idp.provisioning.service import Actor, DirectoryUser
    from tests.support.scim import make_unit

    unit = make_unit(app, "acme", verified=("acme.example",))
    hr = Actor("scim", "scim:test")
    with app.app_context():
        boss = provisioning.create_user(unit, DirectoryUser(user_name="boss@acme.example"),
                                        hr).id
        worker = provisioning.create_user(
            unit, DirectoryUser(user_name="wkr@acme.example", manager_id=boss), hr).id
    employee_budget(app)
    shop = Shop(client, token(app, client, merchant(app), worker, unit))
    after = len(smtp_server.messages)
    answer = shop.buy("80.00").get_json()
    assert answer["status"] == "pending_approval", answer
    link = _link(smtp_server, "boss@acme.example", after)
    web = app.test_client()
    _sign_in(web, smtp_server, "boss@acme.example")
    assert web.get(link).status_code == 200
    assert _post(web, link, action="approve").status_code == 303
    assert shop.get(answer["id"]).get_json()["status"] == "approved"
