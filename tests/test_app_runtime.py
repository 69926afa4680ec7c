"""The app class's per-request shortcuts keep Flask's behaviour: remembered answers
of the coroutine check stay bounded, and the session cookie's serializer follows
the secret key."""

from __future__ import annotations

from flask import Flask

from idp.app import MAX_SYNC_ANSWERS, CsrfCookieSession


def test_remembered_coroutine_checks_are_bounded(app: Flask) -> None:
    made = [lambda: None for _ in range(MAX_SYNC_ANSWERS + 50)]  # e.g. per-request views
    for func in made:
        assert app.ensure_sync(func) is func
    assert len(app._sync) <= MAX_SYNC_ANSWERS  # type: ignore[attr-defined]


def test_session_serializer_is_reused_and_follows_the_secret_key(app: Flask) -> None:
    interface = app.session_interface
    assert isinstance(interface, CsrfCookieSession)
    first = interface.get_signing_serializer(app)
    assert first is not None and interface.get_signing_serializer(app) is first
    old_key = app.secret_key
    try:
        app.secret_key = "another secret key for this test only"
        other = interface.get_signing_serializer(app)
        assert other is not None and other is not first
        token = other.dumps({"csrf_token": "x"})
        assert other.loads(token) == {"csrf_token": "x"}
    finally:
        app.secret_key = old_key
    assert interface.get_signing_serializer(app).loads(first.dumps({"a": 1})) == {"a": 1}
