"""The project builds into a wheel that carries everything a deployment needs
(templates, migrations, static files, translations) and runs from the wheel alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = [
    "idp/templates/base.html",
    "idp/templates/error.html",
    "idp/migrations/env.py",
    "idp/migrations/script.py.mako",
    "idp/static/unitgate.css",
    "idp/translations/de/LC_MESSAGES/messages.mo",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    wheels = list(out.glob("unitgate-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_templates_migrations_static_and_translations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    absent = [n for n in REQUIRED if n not in names]
    assert not absent, f"missing from the wheel: {absent}"
    assert any(n.startswith("idp/migrations/versions/") and n.endswith(".py") for n in names)
    assert any(n.startswith("connectors/") for n in names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    assert not any(n.endswith(".key") for n in names), "a key file was packaged"


def test_wheel_declares_the_idp_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        entry_points = next(n for n in zf.namelist() if n.endswith("entry_points.txt"))
        text = zf.read(entry_points).decode()
    assert "idp = idp.cli:main" in text


def test_unpacked_wheel_runs_init_without_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        PYTHONPATH=str(site),
        IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'unitgate.db'}",
        IDP_MASTER_KEY_FILE=str(tmp_path / "master.key"),
    )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import idp.app; print(idp.app.__file__, idp.app.template_folder())",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    module_file, templates = probe.stdout.split()
    assert module_file.startswith(str(site)) and templates.startswith(str(site))
    result = subprocess.run(
        [sys.executable, "-m", "idp.cli", "init", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["migrated"] is True
