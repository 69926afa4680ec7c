"""Fixture of the migration tests (``tests/test_migration_*.py``): an empty database
of the test's own, on SQLite and on PostgreSQL, that the test migrates down and up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backends import fresh_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (it is migrated down and up): a SQLite file, or a
    PostgreSQL database named after the test module (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    revision = request.module.__name__.rsplit("_", 1)[-1]
    with fresh_postgres(f"unitgate_mig{revision}") as url:
        yield url
