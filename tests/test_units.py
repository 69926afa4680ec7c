"""Business units: creation, slugs, hierarchy, roles, profile fields, deletion and
the ``idp units`` CLI, on every storage backend."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from idp.accounts import accesses
from idp.cli import main
from idp.store import units_repo
from idp.store.db import db
from idp.store.models import Account, AuditEvent
from idp.store.unit_of_work import atomic
from idp.units import registry as units


def audit_events(target: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.target.startswith(target)).order_by(AuditEvent.at)
        )
    )


def cli(runner: FlaskCliRunner, *args: str, code: int = 0) -> Any:
    result = runner.invoke(main, list(args))
    assert result.exit_code == code, result.output
    return json.loads(result.output)


def test_create_derives_unique_slugs(app: Flask) -> None:
    with app.app_context():
        a = units.create("Müller & Söhne GmbH")
        b = units.create("Müller & Söhne GmbH")
        c = units.create("!!!")
        assert (a.slug, b.slug, c.slug) == ("muller-sohne-gmbh", "muller-sohne-gmbh-2", "unit")
        assert len(a.id) == 32 and a.kind == "company"
        assert units.get(a.slug).id == a.id == units.get(a.id).id


def test_explicit_slug_is_validated_and_unique(app: Flask) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
        with pytest.raises(units.UnitError) as taken:
            units.create("ACME again", slug="acme")
        assert taken.value.code == "slug_taken"
        for bad in ("Acme", "-acme", "acme-", "a" * 101, "ac me", "0" * 32, ""):
            with pytest.raises(units.UnitError) as err:
                units.create("x", slug=bad)
            assert err.value.code == "invalid_slug", bad


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "bad\x00name", 42])
def test_malformed_names_are_refused(app: Flask, name: Any) -> None:
    with app.app_context(), pytest.raises(units.UnitError) as err:
        units.create(name)
    assert err.value.code == "invalid_name"


def test_types_and_parents(app: Flask) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme")
        sales = units.create("Sales", parent="acme", slug="acme-sales")
        emea = units.create("EMEA", parent=sales.id)
        solo = units.create("Jane Doe", kind="person")
        assert solo.kind == "person"
        assert sales.parent_id == acme.id
        assert [u.slug for u in units.ancestors(emea)] == ["acme-sales", "acme"]
        assert units.descendant_ids(acme.id) == {sales.id, emea.id}
        with pytest.raises(units.UnitError) as bad_kind:
            units.create("X", kind="department")
        assert bad_kind.value.code == "invalid_kind"
        with pytest.raises(units.UnitError) as unknown:
            units.create("X", parent="nope")
        assert unknown.value.code == "not_found"


def test_moving_a_unit_under_its_own_descendant_is_refused(app: Flask) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
        units.create("Sales", parent="acme", slug="sales")
        units.create("EMEA", parent="sales", slug="emea")
        for target in ("emea", "sales", "acme"):
            with pytest.raises(units.UnitError) as err:
                units.update("acme", parent=target)
            assert err.value.code == "cycle"
        moved = units.update("emea", parent=None)
        assert moved.parent_id is None
        assert units.get("acme").parent_id is None


def test_roles_are_base_roles_plus_permission_groups(app: Flask) -> None:
    with app.app_context():
        unit = units.create("ACME", slug="acme", permission_groups=["buyers", "approvers"])
        assert units.roles_for(unit) == (*units.BASE_ROLES, "approvers", "buyers")
        assert units.validate_roles(unit, ["employee", "buyers", "employee"]) == [
            "employee",
            "buyers",
        ]
        with pytest.raises(units.UnitError):
            units.validate_roles(unit, ["admin"])
        for bad in (["main_user"], ["Buyers"], ["x y"]):
            with pytest.raises(units.UnitError) as err:
                units.update("acme", permission_groups=bad)
            assert err.value.code == "invalid_group"


def test_a_group_still_held_by_members_cannot_be_dropped(app: Flask) -> None:
    with app.app_context():
        unit = units.create("ACME", slug="acme", permission_groups=["buyers"])
        account = Account(email="anna@acme.example", email_verified=True)
        db.session.add(account)
        db.session.commit()
        with atomic():
            accesses.create(account.id, unit.id, ["buyers"], "test", event=None)
        with pytest.raises(units.UnitError) as err:
            units.update("acme", permission_groups=[])
        assert err.value.code == "group_in_use"
        assert units.group_names(units.get("acme")) == ["buyers"]


def test_profile_fields(app: Flask) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
        units.add_field("acme", "ship_to", "Ship-to address", required=True)
        units.add_field("acme", "po_limit", "PO limit")
        units.add_field("acme", "ship_to", "Delivery address")  # change, not a duplicate
        assert [units.field_to_dict(f) for f in units.fields("acme")] == [
            {"name": "ship_to", "label": "Delivery address", "required": False, "type": "text"},
            {"name": "po_limit", "label": "PO limit", "required": False, "type": "text"},
        ]
        for bad in ("email", "Ship", "1x", "x" * 65, "a-b"):
            with pytest.raises(units.UnitError) as err:
                units.add_field("acme", bad, "x")
            assert err.value.code == "invalid_field", bad
        assert units.remove_field("acme", "po_limit") is True
        assert units.remove_field("acme", "po_limit") is False


def test_delete_refuses_units_with_children_and_cascades(app: Flask) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme")
        units.create("Sales", parent="acme", slug="sales")
        units.add_field("acme", "ship_to", "Ship-to")
        account = Account(email="anna@acme.example")
        db.session.add(account)
        db.session.commit()
        with atomic():
            accesses.create(account.id, acme.id, [], "test", event=None)
        with pytest.raises(units.UnitError) as err:
            units.delete("acme")
        assert err.value.code == "has_children"
        units.delete("sales")
        units.delete("acme", actor="cli:test")
        db.session.expire_all()
        assert units.find("acme") is None
        assert accesses.find(account.id, acme.id) is None
        assert units_repo.fields(acme.id) == []
        assert units_repo.account(account.id) is not None  # the person stays
        events = audit_events("acme")
        assert [e.action for e in events] == ["unit.create", "unit.field.add", "unit.delete"]
        assert events[-1].actor == "cli:test" and events[-1].details == {"members": 1}


def test_accesses_are_unique_even_when_joined_twice(app: Flask) -> None:
    with app.app_context():
        unit = units.create("ACME", slug="acme")
        account = Account(email="anna@acme.example")
        db.session.add(account)
        db.session.commit()
        first = accesses.join(account.id, unit.id, ["employee"], "test", "test.join", {})
        second = accesses.join(account.id, unit.id, ["main_user"], "test", "test.join", {})
        assert second.id == first.id and second.roles == ["employee"]


def test_cli_create_list_show_delete(runner: FlaskCliRunner) -> None:
    created = cli(runner, "units", "create", "--name", "ACME GmbH", "--json")
    assert len(created["id"]) == 32 and created["slug"] == "acme-gmbh"
    assert created["type"] == "company" and created["parent"] is None
    sub = cli(
        runner, "units", "create", "--name", "Sales", "--parent", created["id"],
        "--group", "buyers", "--json",
    )
    assert sub["parent"] == "acme-gmbh" and sub["roles"][-1] == "buyers"
    person = cli(runner, "units", "create", "--name", "Jane", "--type", "person", "--json")
    assert person["type"] == "person"
    listed = cli(runner, "units", "list", "--json")
    assert {u["slug"] for u in listed} == {"acme-gmbh", "sales", "jane"}
    field = cli(
        runner, "units", "fields", "add", "acme-gmbh", "--name", "ship_to", "--label",
        "Ship-to", "--required", "--json",
    )
    assert field == {
        "id": field["id"], "unit_id": created["id"], "name": "ship_to", "label": "Ship-to",
        "required": True, "type": "text",
    }
    shown = cli(runner, "units", "show", "acme-gmbh", "--json")
    assert shown["profile_fields"] == [
        {"name": "ship_to", "label": "Ship-to", "required": True, "type": "text"}
    ]
    refused = cli(runner, "units", "delete", "acme-gmbh", "--json", code=1)
    assert refused["error"] == "has_children"
    assert cli(runner, "units", "delete", "sales", "--json")["deleted"] is True
    assert cli(runner, "units", "delete", "acme-gmbh", "--json")["deleted"] is True
    missing = cli(runner, "units", "show", "acme-gmbh", "--json", code=1)
    assert missing["error"] == "not_found"


def test_cli_plain_create_prints_only_the_id(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(main, ["units", "create", "--name", "ACME"])
    assert result.exit_code == 0, result.output
    unit_id = result.output.strip()
    with app.app_context():
        assert units.get(unit_id).slug == "acme"
    bad = runner.invoke(main, ["units", "create", "--name", "X", "--type", "department"])
    assert bad.exit_code == 2
