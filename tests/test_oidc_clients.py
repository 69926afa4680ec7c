"""Client registration rules and the ``idp clients`` CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from joserfc.jwk import ECKey

from idp.cli import main
from idp.release import clients


@pytest.mark.parametrize(
    "uri",
    [
        "http://rp.example/cb",
        "http://192.168.1.5/cb",
        "https://rp.example/cb#frag",
        "https://user:pw@rp.example/cb",
        "https://*.rp.example/cb",
        "rp.example/cb",
        "javascript:alert(1)",
        "custom.scheme:/cb",
        "https://rp.example/c b",
        "",
    ],
)
def test_bad_redirect_uris_refused(app: Flask, uri: str) -> None:
    with app.app_context(), pytest.raises(clients.ClientRegistrationError):
        clients.register("Shop", [uri], actor="test")


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.example/cb",
        "http://127.0.0.1:8080/cb",
        "http://[::1]/cb",
        "http://localhost:3000/cb",
        "https://rp.example/cb?tenant=1",
    ],
)
def test_good_redirect_uris_accepted(app: Flask, uri: str) -> None:
    with app.app_context():
        client, secret = clients.register("Shop", [uri], actor="test")
        assert client.redirect_uris == [uri] and secret


def test_http_post_logout_uri_refused(app: Flask) -> None:
    with app.app_context(), pytest.raises(clients.ClientRegistrationError):
        clients.register("Shop", ["https://rp.example/cb"],
                         post_logout_redirect_uris=["http://rp.example/"],
                         actor="test")  # fmt: skip


def test_public_client_has_no_secret(app: Flask) -> None:
    with app.app_context():
        client, secret = clients.register("App", ["http://127.0.0.1/cb"], public=True, actor="test")
        assert secret is None and client.secret_hash is None
        assert client.token_endpoint_auth_method == "none"
        with pytest.raises(clients.ClientRegistrationError):
            clients.register("App", ["http://127.0.0.1/cb"], public=True,
                             grant_types=["client_credentials"], actor="test")  # fmt: skip


def test_private_key_jwt_needs_public_keys(app: Flask) -> None:
    key = ECKey.generate_key("P-256", private=True)
    with app.app_context():
        with pytest.raises(clients.ClientRegistrationError):
            clients.register("S", ["https://rp.example/cb"], auth_method="private_key_jwt",
                             actor="test")
        with pytest.raises(clients.ClientRegistrationError):
            clients.register("S", ["https://rp.example/cb"], auth_method="private_key_jwt",
                             jwks={"keys": [key.as_dict(private=True)]}, actor="test")  # fmt: skip
        client, secret = clients.register(
            "S", ["https://rp.example/cb"], auth_method="private_key_jwt",
            jwks={"keys": [key.as_dict(private=False)]}, actor="test")  # fmt: skip
        assert secret is None and client.jwks


def test_unknown_scope_grant_and_alg_refused(app: Flask) -> None:
    with app.app_context():
        bad: list[dict[str, Any]] = [
            {"scope": "openid admin"},
            {"grant_types": ["password"]},
            {"grant_types": ["implicit"]},
            {"id_token_alg": "none"},
            {"id_token_alg": "HS256"},
            {"auth_method": "client_secret_jwt"},
        ]
        for kwargs in bad:
            with pytest.raises(clients.ClientRegistrationError):
                clients.register("S", ["https://rp.example/cb"], **kwargs, actor="test")  # type: ignore[arg-type]


def run(runner: FlaskCliRunner, *args: str) -> Any:
    result = runner.invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_create_show_list_delete(runner: FlaskCliRunner, client: FlaskClient) -> None:
    created = run(runner, "clients", "create", "--name", "Shop", "--redirect-uri",
                  "https://rp.example/cb", "--redirect-uri", "https://rp.example/cb2",
                  "--post-logout-uri", "https://rp.example/bye", "--scope", "openid email",
                  "--grant-type", "authorization_code", "--grant-type", "client_credentials",
                  "--json")  # fmt: skip
    cid, secret = created["client_id"], created["client_secret"]
    assert cid and len(secret) >= 40
    assert created["redirect_uris"] == ["https://rp.example/cb", "https://rp.example/cb2"]
    shown = run(runner, "clients", "show", cid, "--json")
    assert "client_secret" not in shown and "secret_hash" not in json.dumps(shown)
    assert shown["grant_types"] == ["authorization_code", "client_credentials"]
    assert cid in {c["client_id"] for c in run(runner, "clients", "list", "--json")["clients"]}
    # The printed secret works at the token endpoint.
    resp = client.post("/token", data={"grant_type": "client_credentials"},
                       auth=(cid, secret))  # fmt: skip
    assert resp.status_code == 200
    assert run(runner, "clients", "delete", cid, "--json")["deleted"] is True
    assert runner.invoke(main, ["clients", "show", cid]).exit_code != 0


@pytest.mark.parametrize("command", ["show", "update", "delete"])
def test_cli_client_id_starting_with_a_dash_is_an_id(runner: FlaskCliRunner, command: str) -> None:
    # client ids are base64url: "-" is a possible first character
    result = runner.invoke(main, ["clients", command, "-Ab3", "--json"])
    assert result.exit_code != 0
    assert "no client '-Ab3'" in result.output


def test_cli_public_and_jwks_clients(runner: FlaskCliRunner, tmp_path: Path) -> None:
    public = run(runner, "clients", "create", "--name", "App", "--redirect-uri",
                 "http://127.0.0.1/cb", "--public", "--json")  # fmt: skip
    assert public["client_secret"] is None and public["token_endpoint_auth_method"] == "none"
    keyfile = tmp_path / "jwks.json"
    key = ECKey.generate_key("P-256", private=True)
    keyfile.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    keyed = run(runner, "clients", "create", "--name", "K", "--redirect-uri",
                "https://rp.example/cb", "--auth-method", "private_key_jwt", "--jwks",
                str(keyfile), "--id-token-alg", "RS256", "--json")  # fmt: skip
    assert keyed["client_secret"] is None and keyed["id_token_signed_response_alg"] == "RS256"


def test_cli_refuses_bad_input(runner: FlaskCliRunner) -> None:
    result = runner.invoke(main, ["clients", "create", "--name", "S", "--redirect-uri",
                                  "http://rp.example/cb", "--json"])  # fmt: skip
    assert result.exit_code != 0 and "loopback" in result.output


def test_cli_update_changes_only_what_is_given(runner: FlaskCliRunner, client: FlaskClient) -> None:
    created = run(runner, "clients", "create", "--name", "Shop", "--redirect-uri",
                  "https://rp.example/cb", "--grant-type", "client_credentials",
                  "--json")  # fmt: skip
    cid, secret = created["client_id"], created["client_secret"]
    updated = run(runner, "clients", "update", cid, "--name", "Shop 2", "--redirect-uri",
                  "https://rp.example/new", "--json")  # fmt: skip
    assert updated["client_name"] == "Shop 2"
    assert updated["redirect_uris"] == ["https://rp.example/new"]
    assert updated["grant_types"] == ["client_credentials"]  # untouched
    assert updated["client_secret"] is None  # the secret is kept, not re-issued
    resp = client.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert resp.status_code == 200
    bad = runner.invoke(main, ["clients", "update", cid, "--redirect-uri", "http://rp.example/x"])
    assert bad.exit_code != 0 and "loopback" in bad.output
    assert run(runner, "clients", "show", cid, "--json")["redirect_uris"] == [
        "https://rp.example/new"
    ]
    assert runner.invoke(main, ["clients", "update", cid]).exit_code != 0  # nothing to change
    assert runner.invoke(main, ["clients", "update", "nope", "--name", "X"]).exit_code != 0
