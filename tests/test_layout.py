"""The package layout (docs/architecture.md, "Layout"): ``import idp`` does not load
the app, and only a few modules stay directly under ``idp/``; everything else lives in
the package of its bounded context."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

IDP = Path(__file__).resolve().parents[1] / "idp"

TOP_LEVEL = {
    "__init__",
    "app",
    "wsgi",
    "settings",
    "services",
    "errors",
    "i18n",
    "audit",
    "process_cache",
}


def test_import_idp_does_not_load_the_app() -> None:
    code = (
        "import sys, idp, idp.store.models; "
        "print(sorted(m for m in sys.modules if m in ('idp.app', 'flask_babel', 'authlib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_only_the_listed_modules_stay_at_the_top() -> None:
    found = {p.stem for p in IDP.glob("*.py")}
    assert found - TOP_LEVEL == set(), "move these into the package of their context"
