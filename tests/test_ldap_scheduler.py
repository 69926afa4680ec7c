"""Periodic LDAP sync: due runs, the one-node-at-a-time lock, the background thread."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from idp.ldap import directories as ldap_directories
from idp.ldap import scheduler as ldap_scheduler
from idp.ldap import sync as ldap_sync
from idp.services import ephemeral
from idp.store import ldap_repo
from idp.store.db import db
from idp.store.models import Account, AuditEvent, LdapDirectory, PermissionGroup, Unit, utcnow
from tests.support import slapd as ldap_test
from tests.support.ldap_fixtures import directory_settings


def schedule(app: Flask, directory_id: str, minutes: int) -> None:
    with app.app_context():
        row = db.session.get(LdapDirectory, directory_id)
        assert row is not None
        row.schedule_minutes = minutes
        db.session.commit()


def accounts(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Account)) or 0)


def test_only_due_directories_run(app: Flask, directory_id: str) -> None:
    with app.app_context():
        assert ldap_scheduler.run_due_syncs() == {}  # schedule 0: by hand only
    schedule(app, directory_id, 30)
    with app.app_context():
        assert ldap_scheduler.run_due_syncs() == {directory_id: "synced"}
        assert ldap_scheduler.run_due_syncs() == {}  # ran just now
        later = utcnow() + timedelta(minutes=31)
        assert ldap_scheduler.run_due_syncs(later) == {directory_id: "synced"}
    assert accounts(app) > 0


def test_a_directory_another_node_syncs_is_skipped(app: Flask, directory_id: str) -> None:
    schedule(app, directory_id, 5)
    with app.app_context():
        ephemeral().add(ldap_sync.lock_key(directory_id), "other-node:1", 60)
        assert ldap_scheduler.run_due_syncs() == {directory_id: "busy"}
    assert accounts(app) == 0


def test_second_run_while_the_first_holds_the_lock_is_refused(
    app: Flask, directory_id: str
) -> None:
    outcomes: list[str] = []

    def other_node() -> None:
        with app.app_context():
            row = ldap_repo.directory(directory_id)
            assert row is not None
            try:
                ldap_sync.run_locked(row)
                outcomes.append("ran")
            except ldap_sync.SyncBusy:
                outcomes.append("busy")

    def after_first_page(_: int) -> None:
        if not outcomes:
            t = threading.Thread(target=other_node)
            t.start()
            t.join()

    with app.app_context():
        row = ldap_repo.directory(directory_id)
        assert row is not None
        summary = ldap_sync.run_locked(row, progress=after_first_page)
    assert outcomes == ["busy"]
    assert summary.created == accounts(app)


def test_a_failing_directory_does_not_stop_the_others(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    schedule(app, directory_id, 5)
    with app.app_context():
        db.session.add(Unit(name="Beta", slug="beta", permission_group_rows=[
            PermissionGroup(name="buyer"), PermissionGroup(name="approver")]))
        db.session.commit()
        dead = ldap_directories.create(
            "beta",
            directory_settings(  # type: ignore[arg-type]
                directory_server, url=f"ldap://127.0.0.1:{ldap_test.free_port()}",
                schedule_minutes=5,
            ),
        )
        outcomes = ldap_scheduler.run_due_syncs()
        assert outcomes[directory_id] == "synced"
        assert outcomes[dead.id].startswith("failed: cannot reach LDAP server")
        row = db.session.get(LdapDirectory, dead.id)
        assert row is not None and row.last_run_at is not None
        assert "cannot reach" in (row.last_run_summary or {})["failed"]
        assert ldap_scheduler.run_due_syncs() == {}  # the failure waits for its schedule too


def test_background_thread_runs_due_syncs(app: Flask, directory_id: str) -> None:
    schedule(app, directory_id, 60)
    thread = ldap_scheduler.start_ldap_scheduler(app, tick=0.05)
    try:
        deadline = time.monotonic() + 120
        while True:
            with app.app_context():
                row = db.session.get(LdapDirectory, directory_id)
                done = row is not None and row.last_run_at is not None
                db.session.remove()
            if done or time.monotonic() > deadline or not thread.is_alive():
                break
            time.sleep(0.05)
    finally:
        thread.stop()
        thread.join(timeout=120)
    assert done, "the scheduler thread never ran the due sync"
    assert not thread.is_alive()
    assert accounts(app) > 0


@pytest.mark.parametrize(("minutes", "ago", "due"), [(0, None, False), (5, None, True),
                                                    (5, 4, False), (5, 5, True)])
def test_is_due(minutes: int, ago: int | None, due: bool) -> None:
    now = utcnow()
    row = LdapDirectory(schedule_minutes=minutes,
                        last_run_at=None if ago is None else now - timedelta(minutes=ago))
    assert ldap_scheduler.is_due(row, now) is due


def test_a_run_another_node_just_finished_is_not_repeated(
    app: Flask, directory_id: str
) -> None:
    schedule(app, directory_id, 30)
    with app.app_context():
        stale = ldap_repo.directory(directory_id)
        assert stale is not None and ldap_scheduler.is_due(stale, utcnow())

        def other_node() -> None:
            with app.app_context():
                row = ldap_repo.directory(directory_id)
                assert row is not None
                ldap_sync.run_locked(row)

        t = threading.Thread(target=other_node)
        t.start()
        t.join()
        assert accounts(app) > 0
        assert ldap_sync.run_if(stale, lambda d: ldap_scheduler.is_due(d, utcnow())) is None
        syncs = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "ldap.sync"))
        assert len(syncs.all()) == 1


def test_idp_serve_workers_run_the_schedule_once(
    app: Flask, directory_id: str, tmp_path: Path
) -> None:
    """Two real gunicorn workers of ``idp serve`` each run a scheduler; the directory
    is synced once."""
    import subprocess
    import sys

    from tests.support.apps import MASTER_KEY
    from tests.support.backends import redis_prefix
    from tests.support.processes import PROJECT_ROOT, free_port, idp_env

    schedule(app, directory_id, 60)
    settings = app.extensions["unitgate"].settings
    values = {"database_url": settings.database_url, "master_key": MASTER_KEY,
              "redis_prefix": redis_prefix(), "issuer": settings.issuer,
              "ldap_scheduler_seconds": "0.5"}
    if settings.redis_url:
        values["redis_url"] = settings.redis_url
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "idp.cli", "serve", "--host", "127.0.0.1",
             "--port", str(free_port()), "--workers", "2"],
            env=idp_env(**values), cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        done = False
        while not done and time.monotonic() < deadline and proc.poll() is None:
            with app.app_context():
                row = db.session.get(LdapDirectory, directory_id)
                done = row is not None and row.last_run_at is not None
                db.session.remove()
            time.sleep(0.2)
        time.sleep(2)  # let the other worker's scheduler look once more
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert done, log.read_text(errors="replace")[-2000:]
    with app.app_context():
        syncs = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "ldap.sync"))
        assert len(syncs.all()) == 1  # two workers, one run
    assert accounts(app) > 0


@pytest.mark.parametrize("settings_overrides", [{"ldap_scheduler_seconds": 0}])
def test_scheduler_can_be_turned_off_per_node(app: Flask) -> None:
    assert ldap_scheduler.start_ldap_scheduler(app) is None
