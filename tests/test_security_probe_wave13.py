"""Security probe of issue 13 (passwords, impersonation, webhooks): each test shows a
hole found by attacking the new code and stays as its regression test."""

from __future__ import annotations

import json

from flask import Flask

from idp.accounts import access_admin, accesses
from idp.cli import main
from idp.factors import passwords
from idp.rights import Actor
from idp.rights import groups as rights_groups
from idp.store.unit_of_work import atomic
from idp.units import customers
from idp.units import registry as units
from tests.support import oidc


def _access(app: Flask, account_id: str, unit_id: str, roles: list[str]) -> str:
    with app.app_context(), atomic():
        return accesses.create(account_id, unit_id, roles, "test", event=None).id


# -- a staff reset acts on the whole person, not on one access ------------------------


def test_a_unit_admin_may_not_reset_the_password_of_a_person_stronger_elsewhere(
    app: Flask,
) -> None:
    """The reset replaces the person's one password and ends all their sessions: an
    admin of a small unit (``users.manage`` there) must not do that to a person who,
    through a plain employee access in that unit, is a main user of another company
    or of the parent, or one of the operator's staff."""
    with app.app_context():
        acme = customers.create("company", {"name": "ACME"}).id
        sales = units.create("ACME Sales", parent=acme).id
        globex = customers.create("company", {"name": "Globex"}).id
        rights_groups.set_group(sales, "helpers", ["users.read", "users.manage"])
    result = app.test_cli_runner().invoke(
        main, ["units", "policy", sales, "--passwords-allowed", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["passwords_allowed"] is True
    helper = oidc.make_account(app, "help@acme.example", given_name="Hel")
    _access(app, helper, sales, ["employee", "helpers"])
    boss = oidc.make_account(app, "boss@acme.example", given_name="Boss")
    _access(app, boss, acme, ["main_user"])
    boss_here = _access(app, boss, sales, ["employee"])
    gus = oidc.make_account(app, "gus@globex.example", given_name="Gus")
    _access(app, gus, globex, ["main_user"])
    gus_here = _access(app, gus, sales, ["employee"])
    ann = oidc.make_account(app, "ann@acme.example", given_name="Ann")
    ann_here = _access(app, ann, sales, ["employee"])
    with app.app_context():
        actor = Actor.account(helper)
        for target, access_id in ((boss, boss_here), (gus, gus_here)):
            row = access_admin.get(sales, access_id)
            assert access_admin.act(actor, "reset_password", row).code == "forbidden"
            assert passwords.status(target) is None
        # an ordinary employee of the unit: still resettable
        row = access_admin.get(sales, ann_here)
        assert access_admin.act(actor, "reset_password", row).outcome == "done"
        assert passwords.status(ann) == "reset_by_staff"
        # the main user of the parent company may reset the boss's colleague, and
        # the system (the operator's CLI) anyone
        assert access_admin.act(Actor.account(boss), "reset_password",
                                access_admin.get(sales, gus_here)).code == "forbidden"
        from idp.rights import SYSTEM

        assert access_admin.act(SYSTEM, "reset_password",
                                access_admin.get(sales, boss_here)).outcome == "done"
