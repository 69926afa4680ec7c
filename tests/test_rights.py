"""Rights (issue 11, item 5): the one authorisation function over a three-level unit
tree (company -> department -> team) for each built-in role, custom permission groups,
operator staff as administrator or processor, and the services that manage them.

SECURITY.md: "Admin rights are checked by one authorisation function on every call;
an admin of unit A sees unit B's resources as 404".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import event, select

from idp.accounts import accesses
from idp.rights import (
    Actor,
    NotPermitted,
    RightsError,
    UnknownPermission,
    catalogue,
    groups,
    may,
    require,
    staff,
)
from idp.rights.authorization import SYSTEM, permissions
from idp.store.db import db
from idp.store.models import (
    Account,
    AuditEvent,
    PermissionGroup,
    StaffAssignment,
)
from idp.store.unit_of_work import atomic
from idp.units import registry as units

ADMIN_ONLY = ("units.manage", "users.manage", "connectors.manage", "audit.read")


@dataclass
class Tree:
    company: str
    department: str
    team: str
    sibling: str  # another department of the company
    other: str  # another customer (top-level unit)


def make_tree() -> Tree:
    company = units.create("ACME", slug="acme")
    department = units.create("ACME Sales", parent="acme", slug="acme-sales")
    team = units.create("ACME Sales North", parent="acme-sales", slug="acme-sales-north")
    sibling = units.create("ACME Buying", parent="acme", slug="acme-buying")
    other = units.create("Globex", slug="globex")
    return Tree(company.id, department.id, team.id, sibling.id, other.id)


def person(email: str, memberships: dict[str, list[str]] | None = None, **values: object) -> str:
    account = Account(email=email, email_verified=True, **values)
    db.session.add(account)
    db.session.commit()
    for unit_id, roles in (memberships or {}).items():
        with atomic():
            accesses.create(account.id, unit_id, roles, "test", event=None)
    return account.id


def as_account(account_id: str) -> Actor:
    return Actor.account(account_id)


@pytest.fixture
def tree(app: Flask) -> Iterator[Tree]:
    with app.app_context():
        yield make_tree()


def test_the_built_in_roles_are_the_units_base_roles_and_use_only_catalogue_names() -> None:
    assert tuple(catalogue.BUILT_IN) == units.BASE_ROLES
    for granted in catalogue.BUILT_IN.values():
        assert granted <= catalogue.ALL
    assert catalogue.BUILT_IN["main_user"] == catalogue.ALL - {"impersonate"}
    assert catalogue.BUILT_IN["employee"] < catalogue.BUILT_IN["operational_contact"]
    assert catalogue.BUILT_IN["operational_contact"] < catalogue.BUILT_IN["commercial_contact"]
    assert catalogue.BUILT_IN["commercial_contact"] < catalogue.BUILT_IN["main_user"]


@pytest.mark.parametrize("role", units.BASE_ROLES)
def test_each_built_in_role_grants_its_permissions_in_its_unit_and_below(
    tree: Tree, role: str
) -> None:
    who = as_account(person("ann@acme.example", {tree.department: [role]}))
    granted = catalogue.BUILT_IN[role]
    for unit_id in (tree.department, tree.team):  # the unit and its sub-unit
        for name in catalogue.ALL:
            assert may(who, name, unit_id) is (name in granted), (role, name, unit_id)
    for unit_id in (tree.company, tree.sibling, tree.other):  # not up, not sideways
        assert permissions(who, unit_id) == frozenset()
        assert not any(may(who, name, unit_id) for name in catalogue.ALL)


def test_a_main_user_of_the_company_administers_every_sub_unit(tree: Tree) -> None:
    boss = as_account(person("boss@acme.example", {tree.company: ["main_user"]}))
    for unit_id in (tree.company, tree.department, tree.team, tree.sibling):
        for name in ADMIN_ONLY:
            assert may(boss, name, unit_id)
    assert not may(boss, "users.read", tree.other)
    assert not may(boss, "impersonate", tree.company)  # granted only explicitly


def test_a_main_user_of_a_sub_unit_does_not_administer_parent_or_siblings(tree: Tree) -> None:
    lead = as_account(person("lead@acme.example", {tree.team: ["main_user"]}))
    assert may(lead, "users.manage", tree.team)
    for unit_id in (tree.department, tree.company, tree.sibling, tree.other):
        assert not may(lead, "users.manage", unit_id)
        assert not may(lead, "users.read", unit_id)


def test_several_main_users_per_unit(tree: Tree) -> None:
    first = as_account(person("one@acme.example", {tree.company: ["main_user"]}))
    second = as_account(person("two@acme.example", {tree.company: ["main_user", "employee"]}))
    assert may(first, "units.manage", tree.team) and may(second, "units.manage", tree.team)


def test_roles_in_the_unit_and_its_ancestors_add_up(tree: Tree) -> None:
    who = as_account(person("mix@acme.example", {
        tree.company: ["employee"], tree.department: ["operational_contact"],
        tree.team: ["commercial_contact"],
    }))
    assert permissions(who, tree.company) == catalogue.BUILT_IN["employee"]
    assert permissions(who, tree.department) == catalogue.BUILT_IN["operational_contact"]
    assert permissions(who, tree.team) == catalogue.BUILT_IN["commercial_contact"]
    assert permissions(who, tree.sibling) == catalogue.BUILT_IN["employee"]


def test_admins_of_two_units_are_isolated(tree: Tree) -> None:
    acme = as_account(person("admin@acme.example", {tree.company: ["main_user"]}))
    globex = as_account(person("admin@globex.example", {tree.other: ["main_user"]}))
    assert may(acme, "users.manage", tree.company) and not may(acme, "users.manage", tree.other)
    assert may(globex, "users.manage", tree.other)
    for unit_id in (tree.company, tree.department, tree.team, tree.sibling):
        assert not may(globex, "users.read", unit_id)
    with pytest.raises(NotPermitted) as err:
        require(globex, "users.read", tree.team)
    assert err.value.unit_id == tree.team and err.value.permission == "users.read"
    assert err.value.foreign  # globex's admin holds nothing in acme: a 404 there
    require(acme, "users.read", tree.team)  # no error
    employee = as_account(person("emp@acme.example", {tree.company: ["employee"]}))
    with pytest.raises(NotPermitted) as err:
        require(employee, "users.manage", tree.team)
    assert not err.value.foreign  # a member without the right: a 403
    with pytest.raises(UnknownPermission):
        require(acme, "users.remove", tree.team)


def test_an_account_without_membership_holds_nothing(tree: Tree) -> None:
    nobody = as_account(person("nobody@example.org"))
    for unit_id in (tree.company, tree.team, tree.other):
        assert permissions(nobody, unit_id) == frozenset()
        assert not may(nobody, "orders.create", unit_id)
    assert not may(as_account("0" * 32), "orders.create", tree.company)  # no such account


def test_a_blocked_account_holds_nothing(tree: Tree) -> None:
    who = as_account(person("gone@acme.example", {tree.company: ["main_user"]}, status="blocked"))
    assert not may(who, "users.read", tree.company)


def test_an_unknown_permission_is_a_programming_error(tree: Tree) -> None:
    boss = as_account(person("boss@acme.example", {tree.company: ["main_user"]}))
    for bad in ("users.delete", "", "USERS.READ"):
        with pytest.raises(UnknownPermission):
            may(boss, bad, tree.company)
        with pytest.raises(UnknownPermission):
            may(SYSTEM, bad, tree.company)


def test_an_unknown_unit_grants_nothing_but_system(tree: Tree) -> None:
    boss = as_account(person("boss@acme.example", {tree.company: ["main_user"]}))
    assert not may(boss, "users.read", "f" * 32)
    assert not may(boss, "users.read", "not-a-unit-id-at-all" * 3)
    assert may(SYSTEM, "impersonate", tree.other)


def test_system_may_everything(tree: Tree) -> None:
    assert all(may(SYSTEM, name, tree.team) for name in catalogue.ALL)


def test_actors_are_checked_when_built() -> None:
    with pytest.raises(ValueError):
        Actor("admin", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Actor("account")
    with pytest.raises(ValueError):
        Actor("system", "x")


# --- custom permission groups ---------------------------------------------------------


def test_a_custom_group_grants_its_permissions_down_the_tree(tree: Tree) -> None:
    groups.set_group("acme-sales", "buyers", ["orders.create", "budgets.manage"], actor="t")
    who = as_account(person("buyer@acme.example", {tree.department: ["buyers"]}))
    assert may(who, "budgets.manage", tree.department)
    assert may(who, "budgets.manage", tree.team)
    assert not may(who, "budgets.manage", tree.company)
    assert not may(who, "budgets.manage", tree.sibling)
    assert not may(who, "users.read", tree.department)
    # The group is still a role of the unit (memberships, org claims).
    assert "buyers" in units.roles_for(units.get("acme-sales"))
    assert units.validate_roles(units.get("acme-sales"), ["buyers"]) == ["buyers"]


def test_a_group_name_means_the_group_of_the_unit_the_membership_is_in(tree: Tree) -> None:
    groups.set_group("acme", "buyers", ["orders.create"])
    groups.set_group("acme-sales", "buyers", ["budgets.manage"])
    who = as_account(person("b@acme.example", {tree.company: ["buyers"]}))
    # Member of the company's "buyers" only: the department's same-named group grants
    # nothing to them.
    assert permissions(who, tree.department) == frozenset({"orders.create"})


def test_changing_a_groups_permissions_changes_the_members_rights_at_once(tree: Tree) -> None:
    groups.set_group("acme", "auditors", ["audit.read"])
    who = as_account(person("aud@acme.example", {tree.company: ["auditors"]}))
    assert may(who, "audit.read", tree.team) and not may(who, "exports.read", tree.team)
    groups.set_group("acme", "auditors", ["audit.read", "exports.read"])
    assert may(who, "exports.read", tree.team)


def test_group_names_and_permissions_are_validated(tree: Tree) -> None:
    with pytest.raises(UnknownPermission) as err:
        groups.set_group("acme", "buyers", ["orders.create", "orders.delete"])
    assert err.value.code == "unknown_permission"
    for bad in ("main_user", "Buyers", "x y", ""):
        with pytest.raises(RightsError) as err2:
            groups.set_group("acme", bad, [])
        assert err2.value.code == "invalid_group"
    with pytest.raises(RightsError) as err3:
        groups.set_group("no-such-unit", "buyers", [])
    assert err3.value.code == "not_found"
    assert groups.list_groups("acme") == []


def test_a_group_held_by_members_cannot_be_removed(tree: Tree) -> None:
    groups.set_group("acme", "buyers", ["orders.create"])
    groups.set_group("acme", "unused", [])
    person("b@acme.example", {tree.company: ["buyers"]})
    with pytest.raises(RightsError) as err:
        groups.remove_group("acme", "buyers")
    assert err.value.code == "group_in_use"
    groups.remove_group("acme", "unused")
    assert [g.name for g in groups.list_groups("acme")] == ["buyers"]
    with pytest.raises(RightsError):
        groups.remove_group("acme", "unused")


def test_groups_made_by_units_create_and_update_are_rows_without_permissions(app: Flask) -> None:
    with app.app_context():
        units.create("Initech", slug="initech", permission_groups=["buyers", "approvers"])
        rows = groups.list_groups("initech")
        assert [(g.name, g.permissions) for g in rows] == [("approvers", []), ("buyers", [])]
        groups.set_group("initech", "buyers", ["orders.create"])
        units.update("initech", permission_groups=["buyers", "signers"])
        rows = groups.list_groups("initech")
        assert [(g.name, g.permissions) for g in rows] == [
            ("buyers", ["orders.create"]), ("signers", []),
        ]
        assert units.describe(units.get("initech"))["permission_groups"] == ["buyers", "signers"]


def test_deleting_a_unit_deletes_its_groups_and_staff_assignments(app: Flask) -> None:
    with app.app_context():
        unit = units.create("Initech", slug="initech", permission_groups=["buyers"])
        unit_id = unit.id
        person("sam@operator.example")
        staff.add("sam@operator.example")
        staff.assign("sam@operator.example", "initech", "administrator")
        units.delete("initech")
        db.session.expire_all()
        assert db.session.scalars(
            select(PermissionGroup).where(PermissionGroup.unit_id == unit_id)
        ).all() == []
        assert db.session.scalars(
            select(StaffAssignment).where(StaffAssignment.unit_id == unit_id)
        ).all() == []
        assert [row["assignments"] for row in staff.describe_all()] == [[]]


# --- staff ----------------------------------------------------------------------------


def test_a_staff_administrator_holds_everything_in_the_customer_and_its_sub_units(
    tree: Tree,
) -> None:
    sid = person("sam@operator.example")
    staff.add("sam@operator.example", actor="t")
    staff.assign("sam@operator.example", "acme", "administrator", actor="t")
    sam = Actor.staff(sid)
    for unit_id in (tree.company, tree.department, tree.team, tree.sibling):
        assert permissions(sam, unit_id) == catalogue.ALL
    assert permissions(sam, tree.other) == frozenset()
    # Acting as a plain account, the same person holds nothing.
    assert not may(Actor.account(sid), "users.read", tree.company)


def test_a_staff_processor_holds_only_the_named_permissions(tree: Tree) -> None:
    pid = person("pat@operator.example")
    staff.add("pat@operator.example")
    staff.assign("pat@operator.example", "acme", "processor", ["orders.create", "documents.read"])
    pat = Actor.staff(pid)
    for unit_id in (tree.company, tree.team):
        assert permissions(pat, unit_id) == {"orders.create", "documents.read"}
        assert not may(pat, "users.manage", unit_id)
    assert not may(pat, "orders.create", tree.other)


def test_staff_rights_end_with_unassignment_and_with_removal(tree: Tree) -> None:
    sid = person("sam@operator.example")
    staff.add("sam@operator.example")
    staff.assign("sam@operator.example", "acme", "administrator")
    staff.assign("sam@operator.example", "globex", "processor", ["audit.read"])
    sam = Actor.staff(sid)
    staff.unassign("sam@operator.example", "acme")
    assert not may(sam, "users.read", tree.team)
    assert may(sam, "audit.read", tree.other)
    staff.remove("sam@operator.example")
    assert not may(sam, "audit.read", tree.other)
    assert staff.describe_all() == []


def test_an_account_that_is_not_staff_gets_nothing_as_staff(tree: Tree) -> None:
    uid = person("boss@acme.example", {tree.company: ["main_user"]})
    assert permissions(Actor.staff(uid), tree.company) == frozenset()


def test_staff_assignments_are_validated(tree: Tree) -> None:
    person("sam@operator.example")
    with pytest.raises(RightsError) as err:
        staff.assign("sam@operator.example", "acme", "administrator")
    assert err.value.code == "not_staff"
    staff.add("sam@operator.example")
    cases = [
        (("acme-sales", "administrator", ()), "not_a_customer"),
        (("nowhere", "administrator", ()), "not_found"),
        (("acme", "owner", ()), "invalid_assignment"),
        (("acme", "processor", ()), "invalid_assignment"),
        (("acme", "administrator", ("users.read",)), "invalid_assignment"),
        (("acme", "processor", ("users.delete",)), "unknown_permission"),
    ]
    for (customer, kind, perms), code in cases:
        with pytest.raises(RightsError) as err:
            staff.assign("sam@operator.example", customer, kind, perms)
        assert err.value.code == code, (customer, kind, perms)
    with pytest.raises(RightsError) as err:
        staff.add("nobody@operator.example")
    assert err.value.code == "not_found"


def test_reassigning_replaces_the_assignment(tree: Tree) -> None:
    sid = person("sam@operator.example")
    staff.add("sam@operator.example")
    staff.assign("sam@operator.example", "acme", "processor", ["audit.read"])
    staff.assign("sam@operator.example", "acme", "administrator")
    assert may(Actor.staff(sid), "users.manage", tree.team)
    [row] = staff.describe_all()
    assert row["assignments"] == [{
        "customer_id": tree.company, "customer": "acme", "as": "administrator",
        "kind": "administrator", "permissions": [],
    }]


def test_every_rights_change_is_audited(tree: Tree) -> None:
    person("sam@operator.example")
    groups.set_group("acme", "buyers", ["orders.create"], actor="cli:op")
    groups.set_group("acme", "buyers", ["orders.create", "audit.read"], actor="cli:op")
    groups.set_group("acme", "buyers", ["audit.read", "orders.create"], actor="cli:op")  # same
    groups.remove_group("acme", "buyers", actor="cli:op")
    staff.add("sam@operator.example", actor="cli:op")
    staff.assign("sam@operator.example", "acme", "administrator", actor="cli:op")
    staff.unassign("sam@operator.example", "acme", actor="cli:op")
    staff.remove("sam@operator.example", actor="cli:op")
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.actor == "cli:op").order_by(AuditEvent.at)
    ).all()
    assert sorted(actions) == sorted([
        "rights.group.create", "rights.group.update", "rights.group.remove",
        "staff.add", "staff.assign", "staff.unassign", "staff.remove",
    ])


# --- cost ----------------------------------------------------------------------------


@contextmanager
def counted_queries() -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block."""
    seen: list[str] = []

    def listener(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def test_a_decision_costs_a_bounded_number_of_queries_whatever_the_depth(app: Flask) -> None:
    with app.app_context():
        parent = None
        chain = []
        for depth in range(9):
            unit = units.create(f"Level {depth}", parent=parent, slug=f"level-{depth}")
            groups.set_group(unit.slug, "g", ["audit.read"])
            chain.append(unit.id)
            parent = unit.slug
        uid = person("deep@acme.example", {uid: ["employee", "g"] for uid in chain})
        sid = person("sam@operator.example")
        staff.add("sam@operator.example")
        staff.assign("sam@operator.example", "level-0", "processor", ["audit.read"])
        for actor in (Actor.account(uid), Actor.staff(sid)):
            db.session.expire_all()
            with counted_queries() as seen:
                assert may(actor, "audit.read", chain[-1])
            assert 1 <= len(seen) <= 5, seen
