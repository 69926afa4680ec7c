"""``idp init`` on a fresh checkout, run as a real process: creates the development
master key, migrates, creates keys; a second run changes nothing."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from idp.crypto.primitives import generate_master_key
from idp.store import migrate
from tests.support import backends
from tests.support.processes import idp_env, run_idp


def init_json(env: dict[str, str]) -> dict[str, object]:
    result = run_idp(["init", "--json"], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def key_rows(url: str) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                (r[0], r[1], r[2])
                for r in conn.execute(sa.text("SELECT kid, alg, state FROM signing_keys"))
            ]
    finally:
        engine.dispose()


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped afterwards."""
    with backends.fresh_postgres("unitgate_init") as url:
        yield url


def test_init_on_a_fresh_checkout_then_again(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "master.key"
    url = f"sqlite:///{tmp_path / 'instance' / 'unitgate.db'}"
    env = idp_env(database_url=url, master_key_file=str(key_file))

    first = init_json(env)
    assert first["master_key_file_created"] is True
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first["migrated"] is True
    assert first["schema_revision"] == migrate.head_revision(url)
    assert len(first["keys_created"]) == 2  # type: ignore[arg-type]
    rows = key_rows(url)
    assert sorted(r[1] for r in rows) == ["ES256", "RS256"]
    assert all(r[2] == "active" for r in rows)
    master = key_file.read_text()

    second = init_json(env)
    assert second["master_key_file_created"] is False
    assert second["migrated"] is False
    assert second["keys_created"] == []
    assert key_file.read_text() == master
    assert key_rows(url) == rows


def test_init_with_master_key_in_environment_writes_no_file(
    tmp_path: Path, fresh_postgres: str
) -> None:
    key_file = tmp_path / "master.key"
    env = idp_env(
        database_url=fresh_postgres,
        master_key=generate_master_key(),
        master_key_file=str(key_file),
    )
    first = init_json(env)
    assert first["master_key_file"] is None and not key_file.exists()
    assert first["migrated"] is True and len(first["keys_created"]) == 2  # type: ignore[arg-type]
    second = init_json(env)
    assert second["migrated"] is False and second["keys_created"] == []
    assert len(key_rows(fresh_postgres)) == 2


def test_init_text_output_and_later_commands(tmp_path: Path) -> None:
    env = idp_env(
        database_url=f"sqlite:///{tmp_path / 'u.db'}",
        master_key_file=str(tmp_path / "master.key"),
    )
    result = run_idp(["init"], env)
    assert result.returncode == 0, result.stderr
    assert "created development master key file" in result.stdout
    assert "created signing keys" in result.stdout
    listed = run_idp(["keys", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "ES256" in listed.stdout and "RS256" in listed.stdout and "active" in listed.stdout


def test_commands_without_master_key_fail_with_a_hint(tmp_path: Path) -> None:
    env = idp_env(
        database_url=f"sqlite:///{tmp_path / 'u.db'}",
        master_key_file=str(tmp_path / "absent.key"),
    )
    result = run_idp(["keys", "list"], env)
    assert result.returncode != 0
    assert "idp init" in result.stderr and "Traceback" not in result.stderr
    served = run_idp(["serve", "--port", "1"], env)
    assert served.returncode != 0
    assert "idp init" in served.stderr and "Traceback" not in served.stderr


def test_malformed_master_key_is_refused(tmp_path: Path) -> None:
    env = idp_env(database_url=f"sqlite:///{tmp_path / 'u.db'}", master_key="too-short")
    result = run_idp(["init"], env)
    assert result.returncode != 0
    assert "32 bytes" in result.stderr or "base64url" in result.stderr
    assert "Traceback" not in result.stderr
