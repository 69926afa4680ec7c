"""Fixture of the migration tests (``tests/test_migration_*.py``): an empty database
of the test's own, on SQLite and on PostgreSQL, that the test migrates down and up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

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


def insert_oidc_client(conn: Any, now: str, merchant: str = "m1", client_id: str = "c1") -> None:
    """A merchant and its OIDC client as the revisions since 0011 store them."""
    conn.execute(sa.text(
        "INSERT INTO merchants (id, name, protocol, identifier, status, created_at)"
        " VALUES (:m, 'Shop', 'oidc', :c, 'active', :now)"),
        {"m": merchant, "c": client_id, "now": now})
    conn.execute(sa.text(
        "INSERT INTO clients (id, client_id, merchant_id, name, redirect_uris,"
        " post_logout_redirect_uris, scope, grant_types, token_endpoint_auth_method,"
        " id_token_signed_response_alg, created_at) VALUES (:k, :c, :m, 'Shop',"
        " '[]', '[]', 'openid', '[]', 'none', 'ES256', :now)"),
        {"k": "k-" + client_id, "c": client_id, "m": merchant, "now": now})


def columns(conn: Any, table: str) -> set[str]:
    """The names of ``table``'s columns."""
    return {c["name"] for c in sa.inspect(conn).get_columns(table)}
