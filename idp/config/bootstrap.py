"""First-run set-up shared by ``idp init``, ``idp demo`` and the tests."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from idp.crypto import keyring as keyring_mod
from idp.crypto.primitives import generate_master_key
from idp.services import services
from idp.settings import Settings
from idp.store import keys_repo, migrate
from idp.store.unit_of_work import atomic


def ensure_master_key_file(path: str) -> bool:
    """Create a development master key file (mode 0600) if it does not exist."""
    p = Path(path)
    if p.exists():
        return False
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(generate_master_key() + "\n")
    p.chmod(0o600)
    return True


def ensure_keys(app: Flask) -> list[str]:
    """Make sure every supported algorithm has an active signing key; returns new kids."""
    created: list[str] = []
    with app.app_context():
        present = {k.alg for k in keys_repo.all_keys() if k.state == "active"}
        for alg in keyring_mod.SUPPORTED_ALGS:
            if alg not in present:
                row = keyring_mod.generate(alg, services().sealer)
                with atomic():
                    keys_repo.add_active(row)
                created.append(row.kid)
        services().keyring.refresh(force=True)
    return created


def init(app: Flask) -> list[str]:
    """Migrate the database to the newest schema and create missing keys (idempotent)."""
    migrate.upgrade(services_settings(app).database_url)
    return ensure_keys(app)


def services_settings(app: Flask) -> Settings:
    return app.extensions["unitgate"].settings
