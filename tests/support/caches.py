"""Helpers for the tests of per-process caches (:mod:`idp.process_cache`): which SQL a
block ran, a second node on the same database, and moving the caches' clock past
their 2 s bound instead of sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import event

from idp import process_cache
from idp.app import create_app
from idp.store.db import db
from tests.support.apps import make_settings
from tests.support.backends import Backend


@contextmanager
def statements(app: Flask, reading: str | None = None) -> Iterator[list[str]]:
    """The SQL statements run on ``app``'s engine inside the block; with ``reading``,
    only the SELECTs from that table."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        if reading is None or (
            statement.lstrip().upper().startswith("SELECT") and f"FROM {reading}" in statement
        ):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def another_node(migrated: Backend, **settings: object) -> Iterator[Flask]:
    """A second app on the same database: another process or node, with caches of
    its own."""
    other = create_app(make_settings(migrated, **settings))
    try:
        yield other
    finally:
        with other.app_context():
            db.session.remove()


def expire_cache_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Move the caches' clock past :data:`idp.process_cache.CACHE_SECONDS`: every
    entry stored so far has expired."""
    clock = process_cache._clock
    monkeypatch.setattr(process_cache, "_clock", lambda: clock() + process_cache.CACHE_SECONDS)
