"""Attacks on the administration API found in review (issue 12): each test is an
attack that used to work and must not."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts import access_admin, accesses, invites
from idp.accounts import lifecycle as accounts
from idp.accounts.access_admin import Refused
from idp.accounts.invites import NewContact
from idp.domains import registry as domains
from idp.mail.outbox import courier, open_body
from idp.rights import SYSTEM, Actor, NotPermitted, may, staff
from idp.rights import groups as permission_groups
from idp.store import outbox_repo
from idp.store.db import db
from idp.store.models import Account
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import Api, api_for, assert_problem
from tests.support.login import csrf_token, sign_in_to_dashboard


@dataclass
class World:
    acme: str
    boss: str  # ACME's main user
    pat: str  # ACME: a custom group "people" with users.read and users.manage
    carl: str  # ACME employee
    pat_access: str
    carl_access: str


def _account(email: str, given: str, family: str) -> str:
    row = Account(email=email, email_verified=True, given_name=given, family_name=family)
    db.session.add(row)
    db.session.commit()
    return row.id


@pytest.fixture
def world(app: Flask) -> World:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        permission_groups.set_group("acme", "people", ["users.read", "users.manage"])
        permission_groups.set_group("acme", "helpdesk", ["users.read", "impersonate"])
        boss = _account("boss@acme.example", "Bea", "Boss")
        pat = _account("pat@acme.example", "Pat", "People")
        carl = _account("carl@acme.example", "Carl", "Clerk")
        with atomic():
            accesses.create(boss, acme, ["main_user"], "test", event=None)
            p = accesses.create(pat, acme, ["employee", "people"], "test", event=None)
            c = accesses.create(carl, acme, ["employee"], "test", event=None)
        return World(acme, boss, pat, carl, p.id, c.id)


def test_a_users_manage_holder_cannot_make_themselves_main_user(
    app: Flask, client: FlaskClient, world: World
) -> None:
    page = sign_in_to_dashboard(app, client, "pat@acme.example")
    csrf = {"X-CSRF-Token": csrf_token(page.get_data(as_text=True))}
    session = Api(client, None)
    path = f"/units/{world.acme}/accesses/{world.pat_access}"
    assert_problem(session.patch(path, json={"roles": ["employee", "main_user"]}, headers=csrf),
                   403, "forbidden")
    assert_problem(session.patch(f"/units/{world.acme}/accesses/{world.carl_access}",
                                 json={"roles": ["main_user"]}, headers=csrf), 403, "forbidden")
    with app.app_context():
        assert not may(Actor.account(world.pat), "units.manage", world.acme)
        row = accesses.find(world.carl, world.acme)
        assert row is not None and row.roles == ["employee"]
    # what pat holds, pat may still hand out
    ok = session.patch(f"/units/{world.acme}/accesses/{world.carl_access}",
                       json={"permission_groups": ["people"]}, headers=csrf)
    assert ok.status_code == 200, ok.get_data(as_text=True)


def test_a_users_manage_holder_cannot_link_or_add_a_main_user(
    app: Flask, world: World
) -> None:
    pat = Actor.account(world.pat)
    with app.app_context():
        sub = units.create("ACME Sales", parent="acme", slug="acme-sales").id
        with pytest.raises(Refused) as refused:
            access_admin.link(pat, sub, account_id=world.carl, roles=["main_user"], groups=[])
        assert refused.value.code == "forbidden"
        with pytest.raises(NotPermitted):
            invites.add_contact(world.acme, NewContact(
                email="mallory@evil.example", given_name="Mal", family_name="Lory",
                mobile=None, roles=["main_user"], platform_access=True,
            ), pat)
        assert accesses.find(world.carl, sub) is None


def test_a_main_user_cannot_grant_impersonate_through_a_custom_group(
    app: Flask, client: FlaskClient, world: World
) -> None:
    api = api_for(app, client, "acme")  # a unit's client: what a main user holds
    path = f"/units/{world.acme}/accesses/{world.carl_access}"
    assert_problem(api.patch(path, json={"permission_groups": ["helpdesk"]}), 403, "forbidden")
    with app.app_context():
        assert not may(Actor.account(world.carl), "impersonate", world.acme)
        with pytest.raises(Refused):
            access_admin.update(Actor.account(world.boss), accesses.find(world.boss, world.acme),
                                groups=["helpdesk"])
        assert not may(Actor.account(world.boss), "impersonate", world.acme)
    # the operator holds impersonate and may grant it
    operator = api_for(app, client)
    resp = operator.patch(path, json={"permission_groups": ["helpdesk"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    # a main user may still make another main user
    resp = api.patch(path, json={"roles": ["main_user"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_a_narrow_staff_processor_cannot_grant_main_user(app: Flask, world: World) -> None:
    with app.app_context():
        helper = _account("help@operator.example", "Hal", "Helper")
        staff.add("help@operator.example")
        staff.assign("help@operator.example", "acme", "processor",
                     ["users.manage", "users.read", "orders.create", "documents.read"])
        processor = Actor.staff(helper)
        assert may(processor, "users.manage", world.acme)
        row = accesses.find(world.carl, world.acme)
        assert row is not None
        with pytest.raises(Refused) as refused:
            access_admin.update(processor, row, roles=["main_user"])
        assert refused.value.code == "forbidden"
        # operational_contact grants nothing the processor lacks
        access_admin.update(processor, row, roles=["operational_contact"])


def _invitation_token(app: Flask, email: str) -> str:
    courier(app).drain()
    with app.app_context():
        for message in outbox_repo.recent(200):
            if message.kind == "email" and message.payload.get("to") == email:
                body = open_body(message)
                assert body is not None
                found = re.search(r"/invitation/([A-Za-z0-9_\-]+)", body["text"])
                assert found
                return found.group(1)
    raise AssertionError("no invitation mail")


def test_an_invitation_link_does_not_undo_a_suspension(app: Flask, world: World) -> None:
    with app.app_context():
        made = invites.add_contact(world.acme, NewContact(
            email="nina@acme.example", given_name="Nina", family_name="Neu", mobile=None,
            roles=["employee"], platform_access=True,
        ), SYSTEM)
        row = access_admin.get(world.acme, made.access.id)
        assert access_admin.act(SYSTEM, "suspend", row).outcome == "done"
    token = _invitation_token(app, "nina@acme.example")
    with app.app_context():
        assert invites.accept(token, None).status != "ok"
        row = accesses.find(made.account.id, world.acme)
        assert row is not None and row.status == "suspended"
        assert not may(Actor.account(made.account.id), "orders.create", world.acme)


def test_a_unit_cannot_add_a_contact_in_another_companys_verified_domain(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.app_context():
        units.create("Globex", slug="globex")
        domains.claim("globex", "globex.example")
        domains.verify_manually("globex.example", "security test fixture", "test")
        domains.claim("acme", "acme.example")
        domains.verify_manually("acme.example", "security test fixture", "test")
    api = api_for(app, client, "acme")
    url = f"/units/{world.acme}/contacts"
    contact = {"given_name": "Ceo", "family_name": "Globex", "roles": ["employee"],
               "platform_access": True}
    for address in ("ceo@globex.example", "CEO@Globex.Example"):
        body = assert_problem(api.post(url, json={**contact, "email": address}), 422,
                              "foreign_domain")
        assert body["errors"][0]["pointer"] == "/body/email"
    with app.app_context():
        assert accounts.by_email("ceo@globex.example") is None
    assert mails_sent_to(app, "ceo@globex.example") == 0
    # its own domain and open ones stay open to it
    for address in ("new@acme.example", "someone@gmail.example"):
        resp = api.post(url, json={**contact, "email": address})
        assert resp.status_code == 201, resp.get_data(as_text=True)


def mails_sent_to(app: Flask, email: str) -> int:
    with app.app_context():
        return sum(1 for m in outbox_repo.recent(200) if m.payload.get("to") == email)


def _cursor(key: list[object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def test_nul_bytes_and_huge_numbers_are_a_4xx_not_a_500(
    app: Flask, client: FlaskClient, world: World
) -> None:
    api = api_for(app, client)
    acme = world.acme
    for path, key in [
        (f"/units/{acme}/accesses", ["a\x00", "x"]),
        ("/accesses", ["a\x00", "x"]),
        (f"/units/{acme}/audit", [10**30]),
        ("/audit", [-(10**30)]),
        ("/audit", [2**63]),
    ]:
        assert_problem(api.get(path, query_string={"cursor": _cursor(key)}), 400,
                       "invalid_cursor")
    for path, query in [
        (f"/units/{acme}/accesses", {"q": "a\x00"}),
        (f"/units/{acme}/accesses", {"permission_group": "a\x00"}),
        (f"/units/{acme}/people/search", {"q": "ab\x00"}),
        ("/audit", {"actor_id": "\x00"}),
        ("/audit", {"action": "a\x00."}),
        ("/audit", {"actor_kind": "\x00"}),
    ]:
        assert_problem(api.get(path, query_string=query), 422, "invalid_input")
    for path, body in [
        (f"/units/{acme}/accesses", {"account_id": "a\x00b"}),
        (f"/units/{acme}/accesses/bulk",
         {"action": "suspend", "selection": {"ids": ["x\x00"]}}),
        (f"/units/{acme}/accesses/bulk",
         {"action": "suspend", "selection": {"filter": {"q": "\x00"}}}),
    ]:
        assert_problem(api.post(path, json=body), 422, "invalid_input")


def test_a_users_manage_holder_cannot_bring_back_a_main_user(
    app: Flask, client: FlaskClient, world: World
) -> None:
    """Reactivating a suspended access, or switching platform access on, hands its
    roles out again: the same rule as granting them."""
    with app.app_context():
        dora = _account("dora@acme.example", "Dora", "Departed")
        with atomic():
            row = accesses.create(dora, world.acme, ["main_user"], "test", event=None)
            accesses.suspend(dora, world.acme, "test", row=row)
            quiet = accesses.create(world.carl, units.create(
                "ACME Sales", parent="acme", slug="acme-sales").id, ["main_user"], "test",
                event=None)
            quiet.platform_access = False
        dora_access, quiet_access, sales = row.id, quiet.id, quiet.unit_id
    page = sign_in_to_dashboard(app, client, "pat@acme.example")
    csrf = {"X-CSRF-Token": csrf_token(page.get_data(as_text=True))}
    session = Api(client, None)
    assert_problem(session.post(f"/units/{world.acme}/accesses/{dora_access}/reactivate",
                                headers=csrf), 403, "forbidden")
    bulk = session.post(f"/units/{world.acme}/accesses/bulk", headers=csrf, json={
        "action": "reactivate", "selection": {"ids": [dora_access]}})
    assert bulk.status_code == 200, bulk.get_data(as_text=True)
    assert bulk.get_json()["items"] == [
        {"id": dora_access, "outcome": "refused", "code": "forbidden"}]
    assert_problem(session.patch(f"/units/{sales}/accesses/{quiet_access}",
                                 json={"platform_access": True}, headers=csrf), 403, "forbidden")
    with app.app_context():
        assert not may(Actor.account(dora), "users.read", world.acme)
        assert not may(Actor.account(world.carl), "users.read", sales)
    # the customer's own main user may
    api = api_for(app, client, "acme")
    resp = api.post(f"/units/{world.acme}/accesses/{dora_access}/reactivate")
    assert resp.status_code == 200, resp.get_data(as_text=True)


class TestSendBudget:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"invitations_per_unit_hour": 2}

    def test_a_unit_sends_only_its_hourly_share_of_invitations(
        self, app: Flask, client: FlaskClient
    ) -> None:
        """An administrator's account cannot be used to mail strangers in bulk: past
        ``IDP_INVITATIONS_PER_UNIT_HOUR`` new contacts with mail, and resends, are refused
        (429 with Retry-After; a bulk resend reports each further item) and nothing is
        written for them; contacts without mail are not counted."""
        with app.app_context():
            acme = units.create("ACME", slug="acme").id
        api = api_for(app, client, "acme")

        def contact(n: int, platform_access: bool = True) -> Any:
            return api.post(f"/units/{acme}/contacts", json={
                "email": f"p{n}@stranger.example", "given_name": "P", "family_name": str(n),
                "roles": ["employee"], "platform_access": platform_access,
            })

        first, second = contact(1), contact(2)
        assert first.status_code == second.status_code == 201
        refused = contact(3)
        body = assert_problem(refused, 429, "too_many_invitations")
        assert int(refused.headers["Retry-After"]) > 0 and body["detail"]
        assert contact(4, platform_access=False).status_code == 201  # no mail: not counted
        with app.app_context():
            assert accounts.by_email("p3@stranger.example") is None
        again = api.post(f"/units/{acme}/accesses/{first.get_json()['access_id']}/invitation")
        assert_problem(again, 429, "too_many_invitations")
        bulk = api.post(f"/units/{acme}/accesses/bulk", json={
            "action": "resend", "selection": {"ids": [second.get_json()["access_id"]]},
        }).get_json()
        assert bulk["items"] == [{"id": second.get_json()["access_id"], "outcome": "refused",
                                  "code": "too_many_invitations"}]
