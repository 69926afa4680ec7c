"""``idp --help`` and ``idp --version`` (issue 16): Unitgate's own commands and
version, no Flask options, and no configuration needed (no master key, no
database)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from tests.support.processes import idp_env, run_idp


def _unconfigured(tmp_path: Path) -> dict[str, str]:
    """No master key anywhere: the key file points into an empty directory."""
    return idp_env(master_key_file=str(tmp_path / "none" / "master.key"),
                   database_url=f"sqlite:///{tmp_path / 'none.db'}")


def test_help_lists_only_unitgate_commands_without_a_master_key(tmp_path: Path) -> None:
    result = run_idp(["--help"], _unconfigured(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "Unitgate identity provider." in out
    for command in ("init", "serve", "units", "clients", "keys", "demo"):
        assert f"  {command} " in out
    for flask_option in ("--app", "--debug", "--env-file", "routes", "shell", "run "):
        assert flask_option not in out
    assert not (tmp_path / "none").exists()  # nothing was created for a help text


def test_version_is_unitgates_own(tmp_path: Path) -> None:
    result = run_idp(["--version"], _unconfigured(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Unitgate {metadata.version('unitgate')}"
    assert "Flask" not in result.stdout and "Werkzeug" not in result.stdout


def test_a_command_without_a_master_key_says_so_without_a_traceback(tmp_path: Path) -> None:
    result = run_idp(["keys", "list"], _unconfigured(tmp_path))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "Error:" in result.stderr
