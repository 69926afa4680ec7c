"""LDAP sync against a real slapd with 1,200 AD-like users (more than one page)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from idp.accounts import accesses
from idp.ldap import sync as ldap_sync
from idp.store import ldap_repo
from idp.store.db import db
from idp.store.models import (
    Access,
    Account,
    AuditEvent,
    Grant,
    LdapLink,
    Session,
    Unit,
    utcnow,
)
from tests.support import slapd as ldap_test
from tests.support.ldap_fixtures import USERS
from tests.support.login import stand_in_merchant

DISABLED = USERS // 100  # every 100th user has userAccountControl 514
ENABLED = USERS - DISABLED


def run(app: Flask, directory_id: str, **kwargs: object) -> ldap_sync.SyncSummary:
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        return ldap_sync.run_locked(directory, **kwargs)  # type: ignore[arg-type]


def account(n: int) -> Account:
    row = db.session.scalars(
        select(Account).where(Account.email == f"{ldap_test.uid(n)}@acme.example")
    ).first()
    assert row is not None, f"no account for user {n}"
    return row


def access(n: int, unit_id: str | None = None) -> Access:
    """User ``n``'s access to ``unit_id`` (or its only one), through ``idp.accounts.accesses``."""
    rows = accesses.of_account(account(n).id)
    found = next((a for a in rows if unit_id in (None, a.unit_id)), None)
    assert found is not None
    return found


def roles(n: int, unit_id: str) -> list[str]:
    return sorted(access(n, unit_id).roles)


def count(model: type) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_first_sync_creates_every_enabled_user_over_several_pages(
    app: Flask, directory_id: str, unit_id: str
) -> None:
    pages: list[int] = []
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        summary = ldap_sync.run_locked(directory, progress=pages.append)

    assert sorted(pages, reverse=True) == [500, 500, 200]  # the server stops at 500 a search
    assert summary.entries == USERS
    assert summary.created == ENABLED
    assert summary.skipped == DISABLED
    assert (summary.updated, summary.deactivated, summary.errors) == (0, 0, 0)
    with app.app_context():
        assert count(Account) == ENABLED
        assert count(LdapLink) == ENABLED
        a = account(3)
        assert (a.given_name, a.family_name) == (ldap_test.GIVEN[3], ldap_test.FAMILY[3])
        facts = access(3)  # employer facts and their owners are the unit's access's
        assert facts.personnel_number == "E00003"
        assert facts.cost_centre == "CC-003"
        assert a.phone_number == "+49 30 1000003"
        assert facts.department == "Department 3"
        assert a.field_owners["family_name"] == "ldap"
        assert facts.field_owners["department"] == "ldap"
        assert "department" not in a.field_owners
        assert a.status == "active" and a.can_sign_in
        assert a.email_verified is False  # trust_email is off
        assert account(7).given_name == "Jürgen"
        assert roles(3, unit_id) == ["buyer", "employee"]
        assert roles(150, unit_id) == ["approver", "buyer", "employee"]
        assert roles(1, unit_id) == ["employee"]
        link = db.session.scalars(select(LdapLink).where(LdapLink.account_id == a.id)).one()
        assert link.external_id == ldap_test.guid_text(3)  # AD objectGUID string form
        assert link.dn == ldap_test.user_dn(3)
        creates = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "account.provisioned")
        ).all()
        assert len(creates) == ENABLED
        assert {e.actor for e in creates} == {f"ldap-sync:{directory_id}"}
        directory = ldap_repo.directory(directory_id)
        assert directory is not None and directory.last_run_summary is not None
        assert directory.last_run_summary["created"] == ENABLED


def test_second_sync_changes_nothing(app: Flask, directory_id: str) -> None:
    run(app, directory_id)
    with app.app_context():
        audits = count(AuditEvent)
    summary = run(app, directory_id)
    assert summary.unchanged == ENABLED
    assert (summary.created, summary.updated, summary.deactivated) == (0, 0, 0)
    with app.app_context():
        assert count(AuditEvent) == audits + 1  # only the run itself


def test_dry_run_reports_the_same_and_writes_nothing(app: Flask, directory_id: str) -> None:
    with app.app_context():
        audits = count(AuditEvent)  # the fixture's domain claim and verification
    dry = run(app, directory_id, dry_run=True)
    with app.app_context():
        assert count(Account) == 0
        assert count(AuditEvent) == audits
        directory = ldap_repo.directory(directory_id)
        assert directory is not None and directory.last_run_at is None
    real = run(app, directory_id)
    keys = ("entries", "created", "updated", "deactivated", "unchanged", "skipped", "errors")
    assert {k: getattr(dry, k) for k in keys} == {k: getattr(real, k) for k in keys}
    assert dry.dry_run and not real.dry_run


def test_changed_attributes_are_updated_and_audited(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    run(app, directory_id)
    directory_server.replace(5, "sn", ["Neumann"])
    directory_server.replace(5, "employeeNumber", ["E99999"])
    directory_server.replace(5, "telephoneNumber", [])  # removed in the directory
    summary = run(app, directory_id)
    assert summary.updated == 1
    assert summary.unchanged == ENABLED - 1
    with app.app_context():
        a = account(5)
        assert (a.family_name, access(5).personnel_number) == ("Neumann", "E99999")
        assert a.phone_number is None
        assert a.field_owners["family_name"] == "ldap"
        assert "phone_number" not in a.field_owners  # cleared: the employee's again
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "account.updated")
        ).one()
        assert event.target == a.id
        assert event.actor == f"ldap-sync:{directory_id}"
        assert event.details["fields"] == ["family_name", "personnel_number", "phone_number"]


def _give_session_and_grant(a: Account) -> None:
    now = utcnow()
    db.session.add(Session(id_hash="h" * 64, account_id=a.id, amr=["otp"],
                           expires_at=now + timedelta(hours=1)))
    db.session.add(Grant(account_id=a.id, client_id="shop", merchant_id=stand_in_merchant("shop"),
                         expires_at=now + timedelta(days=1)))
    db.session.commit()


def test_disabled_in_ad_deactivates_ends_sessions_and_revokes_grants(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    run(app, directory_id)
    with app.app_context():
        _give_session_and_grant(account(4))
    directory_server.disable(4)
    summary = run(app, directory_id)
    assert summary.deactivated == 1
    with app.app_context():
        a = account(4)
        assert a.status == "deactivated" and not a.can_sign_in
        assert db.session.scalars(select(Session).where(Session.account_id == a.id)).all() == []
        grant = db.session.scalars(select(Grant).where(Grant.account_id == a.id)).one()
        assert grant.revoked_at is not None
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "account.deactivated")
        ).one()
        assert event.details["reason"] == "disabled"
        assert event.details["sessions_ended"] == 1 and event.details["grants_revoked"] == 1

    directory_server.enable(4)
    summary = run(app, directory_id)
    assert summary.reactivated == 1
    with app.app_context():
        assert account(4).status == "active"


def test_entry_removed_from_directory_deactivates_and_return_reactivates(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    run(app, directory_id)
    directory_server.delete(8)
    summary = run(app, directory_id)
    assert summary.deactivated == 1
    assert summary.entries == USERS - 1
    with app.app_context():
        assert account(8).status == "deactivated"
        link = db.session.scalars(
            select(LdapLink).where(LdapLink.account_id == account(8).id)
        ).one()
        assert link.state == "missing"
    # Restored with the same objectGUID (AD recycle bin): the account comes back.
    with directory_server.admin() as conn:
        entry = ldap_test.person(8, ldap_test.default_population(USERS))
        dn = entry.pop("dn")
        entry.pop("memberOf", None)
        conn.add(dn, attributes=entry)
    summary = run(app, directory_id)
    assert summary.reactivated == 1
    with app.app_context():
        assert account(8).status == "active"


def test_entry_recreated_with_a_new_id_takes_over_its_old_account(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    run(app, directory_id)
    with app.app_context():
        old_id = account(9).id
    directory_server.delete(9)
    assert run(app, directory_id).deactivated == 1
    with directory_server.admin() as conn:
        entry = ldap_test.person(9, ldap_test.default_population(USERS))
        dn = entry.pop("dn")
        entry.pop("memberOf", None)
        entry["objectGUID"] = ldap_test.guid_bytes(999_999)  # a new object
        conn.add(dn, attributes=entry)
    summary = run(app, directory_id)
    assert summary.reactivated == 1 and summary.errors == 0 and summary.created == 0
    with app.app_context():
        a = account(9)
        assert a.id == old_id and a.status == "active"
        link = db.session.scalars(select(LdapLink).where(LdapLink.account_id == a.id)).one()
        assert link.external_id == ldap_test.guid_text(999_999)
        assert link.state == "active"


def test_blocked_by_someone_else_is_never_reactivated(
    app: Flask, directory_id: str
) -> None:
    run(app, directory_id)
    with app.app_context():
        a = account(10)
        a.status = "blocked"
        db.session.commit()
    summary = run(app, directory_id)
    assert summary.reactivated == 0
    with app.app_context():
        assert account(10).status == "blocked"


def test_account_deprovisioned_elsewhere_is_not_refilled(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    run(app, directory_id)
    with app.app_context():
        a = account(10)
        a.status, a.given_name, a.email = "deleted", "", f"deleted-{a.id}@deleted.invalid"
        db.session.commit()
        deleted_id = a.id
    directory_server.replace(10, "sn", ["Changed"])
    summary = run(app, directory_id)
    assert summary.skipped == DISABLED + 1
    assert (summary.created, summary.updated, summary.reactivated) == (0, 0, 0)
    with app.app_context():
        a = db.session.get(Account, deleted_id)
        assert a is not None
        assert (a.status, a.given_name) == ("deleted", "")


def test_group_changes_set_roles_and_keep_roles_given_elsewhere(
    app: Flask, directory_id: str, unit_id: str, directory_server: ldap_test.Slapd
) -> None:
    run(app, directory_id)
    with app.app_context():
        m = db.session.scalars(
            select(Access).where(Access.account_id == account(6).id)
        ).one()
        m.roles = ["buyer", "unit-admin"]  # unit-admin is not managed by the group map
        db.session.commit()
    directory_server.remove_member("buyers", 6)
    directory_server.add_member("approvers", 6)
    summary = run(app, directory_id)
    assert summary.updated == 1
    with app.app_context():
        assert roles(6, unit_id) == ["approver", "unit-admin"]
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "membership.roles")
        ).one()
        assert event.details["from"] == ["buyer", "unit-admin"]
        assert event.details["to"] == ["approver", "unit-admin"]


def test_existing_account_outside_the_unit_is_not_taken_over(
    app: Flask, directory_id: str
) -> None:
    with app.app_context():
        other = Unit(name="Other", slug="other")
        outsider = Account(email="user00011@acme.example", given_name="Mallory",
                           family_name="Outside")
        db.session.add_all([other, outsider])
        db.session.flush()
        accesses.create(outsider.id, other.id, [], "test", event=None)
        db.session.commit()
    summary = run(app, directory_id)
    assert summary.errors == 1
    assert "user00011@acme.example" in summary.error_samples[0]
    assert summary.created == ENABLED - 1
    with app.app_context():
        a = account(11)
        assert (a.given_name, a.family_name) == ("Mallory", "Outside")
        assert db.session.scalars(select(LdapLink).where(LdapLink.account_id == a.id)).all() == []


def test_account_provisioned_by_scim_is_not_taken_over(
    app: Flask, directory_id: str, unit_id: str
) -> None:
    from idp.store.models import ScimUser

    with app.app_context():
        member = Account(email="user00015@acme.example", given_name="Hr")
        db.session.add(member)
        db.session.flush()
        accesses.create(member.id, unit_id, ["employee"], "test", event=None)
        db.session.add(ScimUser(account_id=member.id, unit_id=unit_id,
                                user_name="user00015@acme.example",
                                user_name_key="user00015@acme.example"))
        db.session.commit()
    summary = run(app, directory_id)
    assert summary.errors == 1 and "managed by SCIM" in summary.error_samples[0]
    with app.app_context():
        assert account(15).given_name == "Hr"


def test_existing_member_of_the_unit_is_adopted(
    app: Flask, directory_id: str, unit_id: str
) -> None:
    with app.app_context():
        member = Account(email="user00012@acme.example", given_name="Old")
        db.session.add(member)
        db.session.flush()
        accesses.create(member.id, unit_id, ["unit-admin"], "test", event=None)
        db.session.commit()
    summary = run(app, directory_id)
    assert summary.errors == 0
    assert summary.updated == 1 and summary.created == ENABLED - 1
    with app.app_context():
        a = account(12)
        assert a.given_name == ldap_test.GIVEN[12 % len(ldap_test.GIVEN)]
        assert roles(12, unit_id) == ["buyer", "unit-admin"]
        assert db.session.scalars(select(LdapLink).where(LdapLink.account_id == a.id)).one()


def test_unusable_entries_are_counted_as_errors_and_the_rest_syncs(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    import ldap3

    with directory_server.admin() as conn:
        conn.modify(ldap_test.user_dn(13), {"mail": [(ldap3.MODIFY_DELETE, [])]})
        conn.modify(ldap_test.user_dn(14), {"mail": [(ldap3.MODIFY_REPLACE, ["not an address"])]})
        duplicate = ["USER00017@acme.example"]  # user 17's address, in other case
        conn.modify(ldap_test.user_dn(16), {"mail": [(ldap3.MODIFY_REPLACE, duplicate)]})
    summary = run(app, directory_id)
    assert summary.errors == 3
    assert summary.created == ENABLED - 3
    assert any(ldap_test.user_dn(13) in e for e in summary.error_samples)


def test_empty_result_never_deactivates_everyone(
    app: Flask, directory_id: str
) -> None:
    run(app, directory_id)
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        directory.user_filter = "(employeeNumber=nobody)"
        db.session.commit()
    summary = run(app, directory_id)
    assert summary.deactivated == 0
    assert summary.deactivation_blocked == ENABLED
    assert summary.errors == 1
    with app.app_context():
        assert db.session.scalar(
            select(func.count()).select_from(Account).where(Account.status == "active")
        ) == ENABLED
    forced = run(app, directory_id, force=True)
    assert forced.deactivated == ENABLED


def test_trusted_directory_marks_email_verified(
    app: Flask, directory_id: str
) -> None:
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        directory.trust_email = True
        db.session.commit()
    run(app, directory_id)
    with app.app_context():
        assert account(2).email_verified is True


def test_a_running_sync_holds_the_lock(app: Flask, directory_id: str) -> None:
    from idp.services import ephemeral

    with app.app_context():
        assert ephemeral().add(ldap_sync.lock_key(directory_id), "node-b:42", 60)
    with pytest.raises(ldap_sync.SyncBusy, match="node-b:42"):
        run(app, directory_id)
    dry = run(app, directory_id, dry_run=True)  # a dry run writes nothing, needs no lock
    assert dry.created == ENABLED
    with app.app_context():
        ephemeral().delete(ldap_sync.lock_key(directory_id))
        assert count(Account) == 0
    run(app, directory_id)
    with app.app_context():
        assert ephemeral().get(ldap_sync.lock_key(directory_id)) is None  # released


def test_unreachable_server_is_a_clear_error(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        directory.url = f"ldap://127.0.0.1:{ldap_test.free_port()}"
        db.session.commit()
        with pytest.raises(ldap_sync.SyncError, match="cannot reach LDAP server"):
            ldap_sync.run_locked(directory)
        assert count(Account) == 0
