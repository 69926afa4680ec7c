"""Signing keys: encryption at rest, rotation with overlap, retirement, pick-up of a
rotation by another worker, and keys imported once (ARCHITECTURE.md rule 6,
SECURITY.md "Key rotation")."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import event, text

from idp.app import create_app
from idp.cli import main
from idp.crypto.keyring import KeyRing
from idp.crypto.primitives import MasterKeyError, Sealer, generate_master_key, parse_master_key
from idp.services import services
from idp.store.db import db
from tests.support.apps import make_settings
from tests.support.backends import Backend


@pytest.fixture
def restore_keys(app: Flask) -> Iterator[None]:
    """Keys survive between tests (RSA generation is slow): undo this test's rotations."""
    with app.app_context():
        rows = db.session.execute(text("SELECT kid, state FROM signing_keys")).all()
        before = {r[0]: r[1] for r in rows}
    yield
    with app.app_context(), db.engine.begin() as conn:
        for (kid,) in conn.execute(text("SELECT kid FROM signing_keys")).all():
            if kid not in before:
                conn.execute(text("DELETE FROM signing_keys WHERE kid = :k"), {"k": kid})
        for kid, state in before.items():
            conn.execute(
                text("UPDATE signing_keys SET state = :s, retired_at = NULL WHERE kid = :k"),
                {"s": state, "k": kid},
            )


def cli(runner: FlaskCliRunner, *args: str) -> Any:
    result = runner.invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def jwks(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/jwks")
    assert resp.status_code == 200
    return resp.get_json()


def verify(token: str, key_set: dict[str, Any], alg: str = "ES256") -> dict[str, Any]:
    return jwt.decode(token, KeySet.import_key_set(key_set), algorithms=[alg]).claims


def sign(app: Flask, claims: dict[str, Any], alg: str = "ES256") -> str:
    with app.app_context():
        return services().keyring.sign_jwt(claims, alg)


def test_private_keys_are_stored_only_encrypted(app: Flask) -> None:
    with app.app_context():
        rows = db.session.execute(
            text("SELECT kid, private_key_encrypted, public_jwk FROM signing_keys")
        ).all()
    assert {r[0] for r in rows}, "bootstrap created no keys"
    for _kid, sealed, public in rows:
        assert "PRIVATE KEY" not in sealed
        assert sealed.startswith("v1.")
        public_text = public if isinstance(public, str) else json.dumps(public)
        assert '"d"' not in public_text and '"p"' not in public_text


def test_wrong_master_key_fails_clearly(app: Flask, migrated: Backend) -> None:
    with app.app_context():
        kid, sealed = db.session.execute(
            text("SELECT kid, private_key_encrypted FROM signing_keys")
        ).first()
        assert b"PRIVATE KEY" in services().sealer.open(sealed, f"signing-key:{kid}")
    other = Sealer(parse_master_key(generate_master_key()))
    with pytest.raises(MasterKeyError, match="wrong master key"):
        other.open(sealed, f"signing-key:{kid}")
    # A whole worker started with the wrong master key refuses to sign.
    wrong = create_app(make_settings(migrated, master_key=generate_master_key()))
    with wrong.app_context(), pytest.raises(MasterKeyError, match="wrong master key"):
        services().keyring.sign_jwt({"sub": "x"})
    with wrong.app_context():
        db.session.remove()
        db.engine.dispose()


def test_public_jwks_has_no_private_parts(client: FlaskClient) -> None:
    keys = jwks(client)["keys"]
    assert {k["alg"] for k in keys} >= {"ES256", "RS256"}
    for k in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(k)
        assert k["use"] == "sig" and k["kid"]


@pytest.mark.usefixtures("restore_keys")
def test_rotation_keeps_old_key_published_until_retired(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    old_token = sign(app, {"sub": "alice", "n": 1})
    old_kid = jwt.decode(old_token, KeySet.import_key_set(jwks(client)), algorithms=["ES256"])
    old_kid = old_kid.header["kid"]

    rotated = cli(runner, "keys", "rotate", "--alg", "ES256", "--json")
    assert rotated["previous"] == [old_kid]
    assert rotated["kid"] != old_kid

    listed = {k["kid"]: k for k in cli(runner, "keys", "list", "--json")["keys"]}
    assert listed[rotated["kid"]]["state"] == "active"
    assert listed[old_kid]["state"] == "published"

    published = jwks(client)
    kids = {k["kid"] for k in published["keys"]}
    assert {old_kid, rotated["kid"]} <= kids
    # Overlap: a token signed before the rotation still verifies against the JWKS.
    assert verify(old_token, published)["sub"] == "alice"
    # New tokens are signed with the new key.
    new_token = sign(app, {"sub": "bob"})
    assert jwt.decode(new_token, KeySet.import_key_set(published)).header["kid"] == rotated["kid"]

    retired = cli(runner, "keys", "retire", old_kid, "--json")
    assert retired["state"] == "retired"
    after = jwks(client)
    assert old_kid not in {k["kid"] for k in after["keys"]}
    with pytest.raises(JoseError):
        verify(old_token, after)
    assert verify(new_token, after)["sub"] == "bob"
    listed = {k["kid"]: k for k in cli(runner, "keys", "list", "--json")["keys"]}
    assert listed[old_kid]["state"] == "retired" and listed[old_kid]["retired"]


def test_retiring_the_active_key_is_refused(app: Flask, runner: FlaskCliRunner) -> None:
    active = [k for k in cli(runner, "keys", "list", "--json")["keys"] if k["state"] == "active"]
    assert active
    for key in active:
        result = runner.invoke(main, ["keys", "retire", key["kid"]])
        assert result.exit_code != 0
        assert "active" in result.output and "rotate" in result.output
    still = {k["kid"]: k["state"] for k in cli(runner, "keys", "list", "--json")["keys"]}
    assert all(still[k["kid"]] == "active" for k in active)


def test_retiring_an_unknown_key_is_refused(runner: FlaskCliRunner) -> None:
    result = runner.invoke(main, ["keys", "retire", "no-such-kid"])
    assert result.exit_code != 0
    assert "no signing key" in result.output


def test_a_kid_starting_with_a_dash_is_a_kid_not_an_option(runner: FlaskCliRunner) -> None:
    # thumbprint kids are base64url: "-" is a possible first character
    result = runner.invoke(main, ["keys", "retire", "-1abc", "--json"])
    assert result.exit_code != 0
    assert "no signing key with kid '-1abc'" in result.output


@pytest.mark.usefixtures("restore_keys")
def test_rsa_rotation_for_clients_asking_rs256(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    old_token = sign(app, {"sub": "carol"}, "RS256")
    rotated = cli(runner, "keys", "rotate", "--alg", "RS256", "--json")
    published = jwks(client)
    assert rotated["kid"] in {k["kid"] for k in published["keys"] if k["alg"] == "RS256"}
    assert verify(old_token, published, "RS256")["sub"] == "carol"
    assert verify(sign(app, {"sub": "dave"}, "RS256"), published, "RS256")["sub"] == "dave"


@pytest.mark.usefixtures("restore_keys")
def test_another_worker_picks_up_a_rotation_without_restart(
    app: Flask, runner: FlaskCliRunner, migrated: Backend
) -> None:
    worker = create_app(make_settings(migrated))
    worker_services = worker.extensions["unitgate"]
    worker_services.keyring = KeyRing(worker_services.sealer, refresh_seconds=0)
    worker_client = worker.test_client()
    try:
        before = {k["kid"] for k in jwks(worker_client)["keys"]}
        rotated = cli(runner, "keys", "rotate", "--json")
        assert rotated["kid"] not in before
        # No restart, no signal: the worker's next request sees the new key ...
        assert rotated["kid"] in {k["kid"] for k in jwks(worker_client)["keys"]}
        token = sign(worker, {"sub": "erin"})
        assert (
            jwt.decode(token, KeySet.import_key_set(jwks(worker_client))).header["kid"]
            == (rotated["kid"])
        )
        # ... and a retirement the same way.
        cli(runner, "keys", "retire", rotated["previous"][0], "--json")
        assert rotated["previous"][0] not in {k["kid"] for k in jwks(worker_client)["keys"]}
    finally:
        with worker.app_context():
            db.session.remove()
            db.engine.dispose()


def test_keys_are_imported_once_not_per_signature(app: Flask) -> None:
    ring = KeyRing(services_of(app).sealer, refresh_seconds=3600)
    statements: list[str] = []
    with app.app_context():
        ring.refresh(force=True)
        first = ring.active("ES256").key
        rsa = ring.active("RS256").key

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            for _ in range(3):
                ring.sign_jwt({"sub": "x"}, "ES256")
                ring.sign_jwt({"sub": "x"}, "RS256")
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert statements == [], "signing read the database"
        assert ring.active("ES256").key is first
        # A forced refresh with an unchanged key set keeps the imported objects too.
        ring.refresh(force=True)
        assert ring.active("ES256").key is first
        assert ring.active("RS256").key is rsa


def services_of(app: Flask) -> Any:
    return app.extensions["unitgate"]


def test_concurrent_first_use_waits_for_the_keys(app: Flask) -> None:
    """A fresh worker's first requests arrive together: none may see an empty ring."""
    ring = KeyRing(services_of(app).sealer, refresh_seconds=3600)
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def first_request() -> None:
        with app.app_context():
            start.wait()
            try:
                ring.sign_jwt({"sub": "x"}, "RS256")
                ring.sign_jwt({"sub": "x"}, "ES256")
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_publish_first_then_activate_keeps_the_publish_before_use_rule(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, restore_keys: None
) -> None:
    """``rotate --publish-first``: the new key is in the JWKS before any token is signed
    with it; ``activate`` then makes it sign, and the replaced key stays published."""
    old_token = sign(app, {"sub": "alice"})
    old_kid = jwt.decode(old_token, KeySet.import_key_set(jwks(client))).header["kid"]

    published = cli(runner, "keys", "rotate", "--alg", "ES256", "--publish-first", "--json")
    assert published["state"] == "published" and published["previous"] == []
    new_kid = published["kid"]
    assert {old_kid, new_kid} <= {k["kid"] for k in jwks(client)["keys"]}
    # Still signed by the old key: no verifier meets the new kid before it can know it.
    still = sign(app, {"sub": "bob"})
    assert jwt.decode(still, KeySet.import_key_set(jwks(client))).header["kid"] == old_kid

    activated = cli(runner, "keys", "activate", new_kid, "--json")
    assert activated["state"] == "active" and activated["previous"] == [old_kid]
    new_token = sign(app, {"sub": "carol"})
    keys = jwks(client)
    assert jwt.decode(new_token, KeySet.import_key_set(keys)).header["kid"] == new_kid
    assert verify(old_token, keys)["sub"] == "alice"  # the replaced key still verifies
    listed = {k["kid"]: k["state"] for k in cli(runner, "keys", "list", "--json")["keys"]}
    assert (listed[new_kid], listed[old_kid]) == ("active", "published")

    # Only a published key can be activated.
    result = runner.invoke(main, ["keys", "activate", new_kid])
    assert result.exit_code == 1 and "not a published signing key" in result.output
    result = runner.invoke(main, ["keys", "activate", "no-such-kid"])
    assert result.exit_code == 1
