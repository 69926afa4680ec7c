"""``idp ldap ...`` commands, in process (CliRunner) and as a real process on a TTY."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select as sql_select

from idp.cli import main
from idp.store.db import db
from idp.store.models import Account, LdapDirectory
from tests.support import slapd as ldap_test
from tests.support.apps import MASTER_KEY
from tests.support.backends import redis_prefix
from tests.support.ldap_fixtures import USERS


def add_args(server: ldap_test.Slapd, password_file: Path, *extra: str) -> list[str]:
    return [
        "ldap", "add", "--unit", "acme", "--url", server.url,
        "--bind-dn", ldap_test.SYNC_DN, "--bind-password-file", str(password_file),
        "--base-dn", ldap_test.PEOPLE, "--filter", "(objectClass=inetOrgPerson)",
        "--group-map", f"{ldap_test.group_dn('buyers')}=buyer",
        "--group-map", "approvers=approver",
        *extra,
    ]


def test_add_show_list_delete(
    app: Flask, runner: FlaskCliRunner, unit_id: str, directory_server: ldap_test.Slapd,
    password_file: Path,
) -> None:
    result = runner.invoke(
        main,
        args=add_args(directory_server, password_file, "--map", "department=cost_centre",
                      "--unmap", "phone_number", "--schedule-minutes", "60", "--json")
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["unit_id"] == unit_id
    assert data["attribute_map"]["department"] == "cost_centre"
    assert "departmentNumber" not in data["attribute_map"]
    assert "telephoneNumber" not in data["attribute_map"]
    assert data["group_map"]["approvers"] == "approver"
    assert data["schedule_minutes"] == 60
    assert ldap_test.SYNC_PASSWORD not in result.output
    with app.app_context():
        row = db.session.get(LdapDirectory, data["id"])
        assert row is not None
        assert ldap_test.SYNC_PASSWORD not in row.bind_password_sealed  # sealed at rest

    shown = runner.invoke(main, args=["ldap", "show", "--unit", "acme", "--json"])
    assert json.loads(shown.output)["id"] == data["id"]
    listed = runner.invoke(main, args=["ldap", "list", "--json"])
    assert [d["id"] for d in json.loads(listed.output)["directories"]] == [data["id"]]

    again = runner.invoke(main, args=add_args(directory_server, password_file))
    assert again.exit_code == 1
    assert "already has an LDAP directory" in again.output

    deleted = runner.invoke(main, args=["ldap", "delete", "--unit", "acme", "--json"])
    assert json.loads(deleted.output) == {"deleted": True, "id": data["id"]}
    gone = runner.invoke(main, args=["ldap", "show", "--unit", "acme"])
    assert gone.exit_code == 1 and "has no LDAP directory" in gone.output


def test_bad_settings_are_one_line_errors(
    runner: FlaskCliRunner, unit_id: str, directory_server: ldap_test.Slapd, password_file: Path,
    tmp_path: Path,
) -> None:
    cases = [
        (["--url", "ldap://dc1.acme.example"], "refusing plain-text LDAP"),
        (["--filter", "(objectClass=user"], "invalid LDAP filter"),
        (["--map", "mail"], "expected ATTRIBUTE=FIELD"),
        (["--map", "mail=password_hash"], "is not an account field"),
        (["--unmap", "email"], "must map an attribute to 'email'"),
        (["--group-map", "buyers=not a role"], "is not a role name"),
        (["--group-map", "buyers=ceo"], "role 'ceo' is not defined in unit 'acme'"),
        (["--page-size", "0"], "page size"),
        (["--ca-file", str(password_file)], "not a PEM certificate"),
        (["--bind-password-file", str(tmp_path / "missing")], "cannot read"),
    ]
    for extra, message in cases:
        args = add_args(directory_server, password_file)
        for i in range(0, len(extra), 2):
            if extra[i] in args and extra[i] in ("--url", "--filter", "--bind-password-file"):
                args[args.index(extra[i]) + 1] = extra[i + 1]
            else:
                args += extra[i : i + 2]
        result = runner.invoke(main, args=args)
        assert result.exit_code == 1, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    args = add_args(directory_server, password_file)
    args[args.index("--unit") + 1] = "nope"
    unknown = runner.invoke(main, args=args)
    assert unknown.exit_code == 1 and "no business unit 'nope'" in unknown.output


def test_sync_json_and_dry_run(
    app: Flask, runner: FlaskCliRunner, unit_id: str, directory_server: ldap_test.Slapd,
    password_file: Path,
) -> None:
    assert runner.invoke(main, args=add_args(directory_server, password_file)).exit_code == 0
    dry = runner.invoke(main, args=["ldap", "sync", "--unit", "acme", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    dry_data = json.loads(dry.output)
    assert dry_data["dry_run"] is True
    assert dry_data["created"] == USERS - USERS // 100
    with app.app_context():
        assert db.session.scalar(sql_select(func.count()).select_from(Account)) == 0

    text = runner.invoke(main, args=["ldap", "sync", "--unit", "acme"])
    assert text.exit_code == 0, text.output
    assert "sync finished: 1200 entries" in text.output
    for key in ("created", "updated", "deactivated", "unchanged", "errors"):
        assert key in text.output
    show = runner.invoke(main, args=["ldap", "show", "--unit", "acme", "--json"])
    shown = json.loads(show.output)
    assert shown["last_run_summary"]["created"] == dry_data["created"]


def test_sync_against_a_dead_server_is_a_clear_error(
    app: Flask, runner: FlaskCliRunner, unit_id: str, directory_server: ldap_test.Slapd,
    password_file: Path,
) -> None:
    args = add_args(directory_server, password_file)
    args[args.index("--url") + 1] = f"ldap://127.0.0.1:{ldap_test.free_port()}"
    assert runner.invoke(main, args=args).exit_code == 0
    result = runner.invoke(main, args=["ldap", "sync", "--unit", "acme"])
    assert result.exit_code == 1
    assert "Error: cannot reach LDAP server ldap://127.0.0.1:" in result.output
    assert "Traceback" not in result.output


def _run_on_tty(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` with stdin/stdout/stderr on a pseudo-terminal; return its output."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    code = proc.wait()
    os.close(leader)
    return code, b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal(
    app: Flask, runner: FlaskCliRunner, unit_id: str, directory_server: ldap_test.Slapd,
    password_file: Path,
) -> None:
    assert runner.invoke(main, args=add_args(directory_server, password_file)).exit_code == 0
    settings = app.extensions["unitgate"].settings
    env = dict(os.environ)
    env.update(
        IDP_DATABASE_URL=settings.database_url,
        IDP_MASTER_KEY=MASTER_KEY,
        IDP_REDIS_PREFIX=redis_prefix(),
        IDP_ISSUER=settings.issuer,
    )
    env.pop("IDP_REDIS_URL", None)
    if settings.redis_url:
        env["IDP_REDIS_URL"] = settings.redis_url
    argv = [sys.executable, "-m", "idp.cli", "ldap", "sync", "--unit", "acme"]
    code, out = _run_on_tty(argv, env)
    assert code == 0, out
    assert "syncing" in out and "100%" in out
    assert "sync finished: 1200 entries" in out
