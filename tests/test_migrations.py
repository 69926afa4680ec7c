"""The Alembic migrations produce exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from idp.store import migrate
from idp.store.models import Base
from tests.support.backends import Backend


def test_models_match_migrations(migrated: Backend) -> None:
    engine = create_engine(migrated.database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_upgrade_is_idempotent(migrated: Backend) -> None:
    migrate.upgrade(migrated.database_url)
    assert migrate.current_revision(migrated.database_url) == migrate.head_revision(
        migrated.database_url
    )
