"""SCIM bearer tokens are checked against a per-process cache of at most 2 s: a
repeated request reads no token row, while revocation and unit deletion in this
process count on the very next request, and in another process (here: a second app
on the same database) once its entry expires."""

from __future__ import annotations

import pytest
from flask import Flask

from idp.provisioning import scim_tokens
from idp.units import registry as units
from tests.support.backends import Backend
from tests.support.caches import another_node, expire_cache_entries, statements
from tests.support.scim import make_unit


@pytest.fixture
def token(app: Flask) -> tuple[str, str]:
    """(token id, plaintext) of a new token of unit ``acme``."""
    make_unit(app, "acme")
    with app.app_context():
        row, plain = scim_tokens.create("acme", "Okta", "test")
        return row.id, plain


def authenticate(app: Flask, plain: str) -> scim_tokens.Caller | None:
    with app.app_context():
        return scim_tokens.authenticate(plain)


def test_a_repeated_request_reads_no_token_row(app: Flask, token: tuple[str, str]) -> None:
    _, plain = token
    with statements(app, reading="scim_tokens") as reads:
        assert authenticate(app, plain) is not None
        assert len(reads) == 1
        for _ in range(3):
            assert authenticate(app, plain) is not None
        assert len(reads) == 1


def test_unknown_tokens_are_never_cached(app: Flask, token: tuple[str, str]) -> None:
    with statements(app, reading="scim_tokens") as reads:
        for _ in range(3):
            assert authenticate(app, "ugscim_" + "x" * 43) is None
        assert len(reads) == 3


def test_revocation_counts_on_the_next_request(app: Flask, token: tuple[str, str]) -> None:
    token_id, plain = token
    assert authenticate(app, plain) is not None  # cached now
    with app.app_context():
        assert scim_tokens.revoke(token_id, "test") is not None
    assert authenticate(app, plain) is None


def test_unit_deletion_counts_on_the_next_request(app: Flask, token: tuple[str, str]) -> None:
    _, plain = token
    assert authenticate(app, plain) is not None
    with app.app_context():
        units.delete("acme")
    assert authenticate(app, plain) is None


def test_another_process_sees_a_revocation_when_its_entry_expires(
    app: Flask, token: tuple[str, str], migrated: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_id, plain = token
    with another_node(migrated) as other:
        assert authenticate(other, plain) is not None
        with app.app_context():
            scim_tokens.revoke(token_id, "test")
        assert authenticate(app, plain) is None
        # The other node keeps its copy until the entry expires (at most 2 s) ...
        assert authenticate(other, plain) is not None
        expire_cache_entries(monkeypatch)
        # ... and then reads the database again.
        assert authenticate(other, plain) is None


def test_last_use_is_still_recorded(app: Flask, token: tuple[str, str]) -> None:
    token_id, plain = token
    assert authenticate(app, plain) is not None
    with app.app_context():
        rows = scim_tokens.listing("acme")
        assert [r.last_used_at is not None for r in rows if r.id == token_id] == [True]
