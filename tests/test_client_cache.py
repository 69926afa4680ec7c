"""Clients are looked up through a per-process cache of at most 2 s: a repeated
lookup reads no client row, while a change or deletion committed in this process
counts on the very next lookup (the commit hook, not a call in the writer), and in
another process (here: a second app on the same database) once its entry expires."""

from __future__ import annotations

import pytest
from flask import Flask

from idp.release import clients
from idp.release.clients import ClientInfo
from tests.support.backends import Backend
from tests.support.caches import another_node, expire_cache_entries, statements

CB = "https://shop.example/cb"


@pytest.fixture
def client_id(app: Flask) -> str:
    with app.app_context():
        row, _ = clients.register("Shop", [CB], scope="openid email", actor="test")
        return row.client_id


def lookup(app: Flask, client_id: str) -> ClientInfo | None:
    with app.app_context():
        return clients.lookup(client_id)


def test_a_repeated_lookup_reads_no_client_row(app: Flask, client_id: str) -> None:
    with statements(app, reading="clients") as reads:
        for _ in range(4):
            assert lookup(app, client_id) is not None
        assert len(reads) == 1


def test_unknown_clients_are_never_cached(app: Flask) -> None:
    with statements(app, reading="clients") as reads:
        for _ in range(3):
            assert lookup(app, "no-such-client") is None
        assert len(reads) == 3


def test_deletion_counts_on_the_next_lookup(app: Flask, client_id: str) -> None:
    assert lookup(app, client_id) is not None  # cached now
    with app.app_context():
        assert clients.delete(client_id, actor="test")
        assert not clients.delete(client_id, actor="test")  # gone: nothing left to delete
    assert lookup(app, client_id) is None


def test_a_change_counts_on_the_next_lookup(app: Flask, client_id: str) -> None:
    assert lookup(app, client_id).scopes == ("openid", "email")  # type: ignore[union-attr]
    with app.app_context():
        clients.update(client_id, scope="openid email org", actor="test")
    assert lookup(app, client_id).scopes == ("openid", "email", "org")  # type: ignore[union-attr]


def test_another_process_sees_a_deletion_when_its_entry_expires(
    app: Flask, client_id: str, migrated: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with another_node(migrated) as other:
        assert lookup(other, client_id) is not None
        with app.app_context():
            clients.delete(client_id, actor="test")
        assert lookup(app, client_id) is None
        # The other node keeps its copy until the entry expires (at most 2 s) ...
        assert lookup(other, client_id) is not None
        expire_cache_entries(monkeypatch)
        # ... and then reads the database again.
        assert lookup(other, client_id) is None
