"""The ``app``, ``client`` and ``runner`` fixtures on a freshly cleaned database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.app import create_app
from idp.config import bootstrap
from idp.crypto.primitives import generate_master_key
from idp.settings import Settings
from idp.store import migrate
from tests.support.backends import Backend, redis_prefix

MASTER_KEY = generate_master_key()
ISSUER = "http://localhost"

# Tables kept between tests: signing keys (RSA generation is slow; tests that rotate
# keys clean up after themselves through ``fresh_keys``).
KEEP_TABLES = {"signing_keys", "alembic_version"}


@pytest.fixture(scope="session")
def migrated(backend: Backend) -> Backend:
    migrate.upgrade(backend.database_url)
    return backend


def make_settings(backend: Backend, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "issuer": ISSUER,
        "database_url": backend.database_url,
        "redis_url": backend.redis_url,
        "master_key": MASTER_KEY,
        "secure_cookies": False,
        "dev_mode": False,
        "smtp_url": None,
        "redis_prefix": redis_prefix(),
        # the upstream provider of the tests listens on loopback (plain http)
        "federation_allow_private": True,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def clean(app: Flask) -> None:
    """Empty every table but the kept ones, and flush this worker's Redis database."""
    from idp.store.db import db

    with app.app_context():
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in tables)
                conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")
            else:
                for t in tables:
                    conn.execute(t.delete())
        settings = app.extensions["unitgate"].settings
        if settings.redis_url:
            import redis

            r = redis.Redis.from_url(settings.redis_url)
            keys = list(r.scan_iter(match=settings.redis_prefix + "*", count=1000))
            if keys:
                r.delete(*keys)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module to change settings for its ``app``."""
    return {}


@pytest.fixture
def app(migrated: Backend, settings_overrides: dict[str, object]) -> Iterator[Flask]:
    application = create_app(make_settings(migrated, **settings_overrides))
    application.config["TESTING"] = True
    clean(application)
    bootstrap.ensure_keys(application)
    yield application
    from idp.store.db import db

    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def tmp_master_key_file(tmp_path: Path) -> Path:
    return tmp_path / "master.key"
