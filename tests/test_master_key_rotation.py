"""Master-key rotation (``idp master-key rotate``): values of every sealed kind, sealed
through the services, open under the new key alone after the rotation; hashed secrets
(client secret, refresh token) keep working; a rotation stopped half-way is finished
by running it again; ``--check`` tells what is left. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.app import create_app
from idp.cli import main
from idp.config.connectors import current_secret
from idp.crypto.primitives import MasterKeyError, Sealer, generate_master_key, parse_master_key
from idp.crypto.sealed_fields import SEALED_FIELDS
from idp.factors import totp
from idp.federation import admin as federation_admin
from idp.ldap import directories
from idp.mail import outbox
from idp.rights import Actor
from idp.services import services
from idp.store.db import db
from idp.store.models import (
    Account,
    Connector,
    LdapDirectory,
    OutboxMessage,
    SigningKey,
    TotpCredential,
    WebhookEndpoint,
    utcnow,
)
from idp.webhooks import endpoints as webhook_endpoints
from tests.support.apps import MASTER_KEY, make_settings
from tests.support.backends import Backend
from tests.support.oidc import (
    exchange,
    make_account,
    make_unit,
    refresh,
    register,
    sign_in,
)

BIND_PASSWORD = "bind-secret-42"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}  # a webhook endpoint on loopback
CONNECTOR_SECRET = "upstream-client-secret"


def seal_one_of_each(app: Flask) -> dict[str, str]:
    """Through the services: a connector secret, an LDAP bind password, a TOTP secret, a
    queued mail (no SMTP: its body stays sealed). Signing keys exist already."""
    account_id = make_account(app, "rot@corp.example")
    unit_id = make_unit(app, account_id)
    with app.test_request_context("/"):
        connector = federation_admin.create(
            unit_id, "google", client_id="cid", hosted_domains=["corp.example"],
            client_secret=CONNECTOR_SECRET, actor="test")
        directory = directories.create(unit_id, directories.DirectorySettings(
            url="ldap://127.0.0.1:1", bind_dn="cn=sync,dc=corp", bind_password=BIND_PASSWORD,
            base_dn="ou=people,dc=corp"))
        account = db.session.get(Account, account_id)
        assert account is not None
        secret = totp.begin_enrolment(account)
        assert secret is not None
        message_id = outbox.enqueue_email(
            "rot@corp.example", "code", "en",
            {"code": "654321", "minutes": 10, "client_name": "Shop", "expires_at": utcnow()})
        hook = webhook_endpoints.create(unit_id, "http://127.0.0.1:9/hook", None, "rotation",
                                        Actor.system())
        hook_secret = webhook_endpoints.rotate(hook.endpoint, Actor.system())
    return {"account": account_id, "unit": unit_id, "connector": connector.id,
            "directory": directory.id, "totp": secret, "message": message_id,
            "webhook": hook.endpoint.id, "webhook_secrets": f"{hook_secret} {hook.secret}"}


def assert_all_open(app: Flask, ids: dict[str, str]) -> None:
    """Every sealed value opens in ``app`` (through the services that use them)."""
    with app.test_request_context("/"):
        connector = db.session.get(Connector, ids["connector"])
        assert connector is not None and current_secret(connector) == CONNECTOR_SECRET
        directory = db.session.get(LdapDirectory, ids["directory"])
        assert directory is not None
        assert directories.connection_config(directory).bind_password == BIND_PASSWORD
        credential = db.session.scalars(select(TotpCredential).where(
            TotpCredential.account_id == ids["account"])).one()
        assert totp._secret(credential) == ids["totp"]
        message = db.session.get(OutboxMessage, ids["message"])
        assert message is not None
        body = outbox.open_body(message)
        assert body is not None and "654321" in json.dumps(body)
        hook = db.session.get(WebhookEndpoint, ids["webhook"])
        assert hook is not None
        live = webhook_endpoints.live_secrets(hook, utcnow())
        assert " ".join(live) == ids["webhook_secrets"]  # the current and previous secret
        token = services().keyring.sign_jwt({"sub": "x"}, "ES256")
        keys = services().keyring.jwks()
    assert jwt.decode(token, KeySet.import_key_set(keys), algorithms=["ES256"]).claims["sub"] == "x"


def sealed_values(app: Flask) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    with app.app_context():
        for f in SEALED_FIELDS:
            for row in db.session.scalars(select(f.model)):
                value = f.get(row)
                if value:
                    out.append((value, f.context(row)))
    return out


@pytest.fixture
def new_key(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    key = generate_master_key()
    path = tmp_path / "new.key"
    path.write_text(key + "\n")
    yield key, path


def app_with(migrated: Backend, **overrides: object) -> Flask:
    application = create_app(make_settings(migrated, **overrides))
    application.config["TESTING"] = True
    return application


def rotate(runner: FlaskCliRunner, *args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(main, ["master-key", "rotate", *args, "--json"])
    return result.exit_code, (json.loads(result.output) if result.output.startswith("{") else
                              {"output": result.output})


def test_rotation_reseals_every_kind_and_hashes_survive(
    app: Flask, migrated: Backend, new_key: tuple[str, Path], tmp_path: Path
) -> None:
    ids = seal_one_of_each(app)
    web = app.test_client()
    rp = register(app)
    tokens = exchange(web, rp, sign_in(app, web, rp, ids["account"],
                                       scope="openid offline_access")).get_json()
    assert "refresh_token" in tokens, tokens
    key, key_file = new_key
    old_file = tmp_path / "old.key"
    old_file.write_text(MASTER_KEY)

    # Step 1: nodes accept the new key for opening, the old one still seals.
    node_step1 = app_with(migrated, master_key_previous=key)
    code, report = rotate(node_step1.test_cli_runner(), "--new-key-file", str(key_file))
    assert code == 0, report
    assert report["complete"] is True and report["keyed_hash_stored"] is True
    fields = report["fields"]
    assert isinstance(fields, dict)
    for name in ("signing_keys.private_key_encrypted", "outbox.payload.body",
                 "connectors.secret_sealed", "ldap_directories.bind_password_sealed",
                 "totp_credentials.secret_sealed", "instance_secrets.value_sealed",
                 "webhook_endpoints.secret_sealed",
                 "webhook_endpoints.previous_secret_sealed"):
        assert fields[name]["resealed"] >= 1, (name, fields)
    assert_all_open(node_step1, ids)  # mid-rotation nodes read both

    # Everything is sealed under the new key now: the old key alone opens nothing.
    old_only = Sealer(parse_master_key(MASTER_KEY))
    new_only = Sealer(parse_master_key(key))
    values = sealed_values(app)
    assert len(values) >= 6
    for value, context in values:
        new_only.open(value, context)
        with pytest.raises(MasterKeyError):
            old_only.open(value, context)

    # The new key alone: every value opens, and the hashed secrets still match.
    node_new = app_with(migrated, master_key=key)
    assert_all_open(node_new, ids)
    resp = refresh(node_new.test_client(), rp, tokens["refresh_token"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    code, report = rotate(node_new.test_cli_runner(), "--check")
    assert (code, report["stale"]) == (0, 0), report

    # Back to the suite's key (signing keys are kept between tests).
    code, report = rotate(node_new.test_cli_runner(), "--new-key-file", str(old_file))
    assert code == 0, report
    assert_all_open(app_with(migrated), ids)


def test_a_rotation_stopped_half_way_is_finished_by_a_rerun(
    app: Flask, migrated: Backend, new_key: tuple[str, Path], tmp_path: Path
) -> None:
    ids = seal_one_of_each(app)
    seal_one_of_each_more = [make_account(app, f"p{i}@corp.example") for i in range(3)]
    with app.test_request_context("/"):
        for account_id in seal_one_of_each_more:
            account = db.session.get(Account, account_id)
            assert account is not None and totp.begin_enrolment(account)
    key, key_file = new_key
    old_file = tmp_path / "old.key"
    old_file.write_text(MASTER_KEY)
    node = app_with(migrated, master_key_previous=key)
    runner = node.test_cli_runner()

    code, report = rotate(runner, "--new-key-file", str(key_file), "--batch-size", "1",
                          "--max-batches", "4")
    assert code == 3 and report["complete"] is False, report
    assert isinstance(report["resealed"], int) and 0 < report["resealed"] <= 4
    code, report = rotate(runner, "--check", "--new-key-file", str(key_file))
    assert code == 1 and isinstance(report["stale"], int) and report["stale"] > 0, report
    assert_all_open(node, ids)  # half-way: nodes still open everything

    code, report = rotate(runner, "--new-key-file", str(key_file), "--batch-size", "2")
    assert code == 0 and report["complete"] is True, report
    code, report = rotate(runner, "--check", "--new-key-file", str(key_file))
    assert (code, report["stale"]) == (0, 0), report
    code, report = rotate(runner, "--new-key-file", str(key_file))  # idempotent
    assert code == 0 and report["resealed"] == 0, report

    node_new = app_with(migrated, master_key=key)
    assert_all_open(node_new, ids)
    code, report = rotate(node_new.test_cli_runner(), "--new-key-file", str(old_file))
    assert code == 0, report
    with app.app_context():
        assert db.session.scalars(select(SigningKey)).first() is not None


def test_a_value_under_an_unknown_key_stops_the_rotation_with_its_name(
    app: Flask, migrated: Backend, new_key: tuple[str, Path]
) -> None:
    ids = seal_one_of_each(app)
    key, _ = new_key
    # The nodes never accepted the new key, and the operator points at a third one:
    node = app_with(migrated, master_key=key)  # IDP_MASTER_KEY changed, no previous
    result = node.test_cli_runner().invoke(main, ["master-key", "rotate"])
    assert result.exit_code == 1
    assert "opens under none of the given keys" in result.output
    assert_all_open(app, ids)  # nothing was harmed


def test_keyed_hash_key_must_be_stored_before_the_switch(
    app: Flask, migrated: Backend, new_key: tuple[str, Path]
) -> None:
    """Running the second step first would store a hash key derived from the wrong
    master key: refused."""
    key, _ = new_key
    node = app_with(migrated, master_key=key, master_key_previous=MASTER_KEY)
    result = node.test_cli_runner().invoke(main, ["master-key", "rotate"])
    assert result.exit_code == 1
    assert "keyed-hash key is not stored yet" in result.output
