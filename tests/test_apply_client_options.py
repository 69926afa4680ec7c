"""``idp apply`` / ``idp export`` carry every operator-settable option of an OIDC
client: PAR and DPoP (RFC 9126 §6, RFC 9449 §5.2), keys (``jwks``/``jwks_uri``),
required claims and the logout channels. Export -> apply round-trips through the CLI;
a bad value is refused with a message naming the key, and nothing changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskCliRunner
from joserfc.jwk import ECKey

from idp.cli import main
from tests.support.apps import clean

REDIRECT = "https://shop.example/callback"
FRONT = "https://shop.example/frontchannel-logout"
BACK = "http://127.0.0.1:9/backchannel-logout"  # loopback: allowed with the override
JWKS_URI = "http://127.0.0.1:9/jwks.json"

EVERY_OPTION = {
    "name": "Every Option Shop",
    "redirect_uris": [REDIRECT, "https://shop.example/cb2"],
    "post_logout_redirect_uris": ["https://shop.example/bye"],
    "scope": "openid profile email phone",
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "token_endpoint_auth_method": "private_key_jwt",
    "id_token_signed_response_alg": "RS256",
    "jwks_uri": JWKS_URI,
    "required_claims": ["email", "name"],
    "require_pushed_authorization_requests": True,
    "dpop_bound_access_tokens": True,
    "backchannel_logout_uri": BACK,
    "backchannel_logout_session_required": True,
    "frontchannel_logout_uri": FRONT,
    "frontchannel_logout_session_required": True,
}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"backchannel_allow_private": True}


def inline_keys() -> dict[str, Any]:
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    return {
        "name": "Inline Keys Shop",
        "redirect_uris": ["https://keys.example/callback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.as_dict(private=False)]},
        "dpop_bound_access_tokens": True,
    }


def cli(runner: FlaskCliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def write(tmp_path: Path, data: dict[str, Any], name: str = "unitgate.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def exported(runner: FlaskCliRunner) -> dict[str, Any]:
    return dict(json.loads(cli(runner, "export", "--json")))


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["clients"]}


def client_row(app: Flask, client_id: str) -> dict[str, Any]:
    from idp.interaction import rp_logout
    from idp.release import clients

    with app.app_context():
        row = clients.get(client_id)
        assert row is not None
        info = clients.lookup(client_id)
        assert info is not None
        return {**clients.describe(row), **rp_logout.channels(client_id).describe(),
                "lookup_par": info.require_par, "lookup_dpop": info.dpop_bound}


def test_every_option_round_trips_through_the_cli(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    keys = inline_keys()
    path = write(tmp_path, {"version": 1, "clients": [EVERY_OPTION, keys]})
    plan = cli(runner, "apply", path, "--dry-run")
    assert "require_pushed_authorization_requests=True" in plan
    assert f"frontchannel_logout_uri={FRONT!r}" in plan
    done = json.loads(cli(runner, "apply", path, "--json"))
    assert [e.get("client_secret") for e in done["client_secrets"]] == [None, None]
    ids = {e["name"]: e["client_id"] for e in done["client_secrets"]}
    row = client_row(app, ids["Every Option Shop"])
    for key, value in EVERY_OPTION.items():
        want = ["sub", *value] if key == "required_claims" else value
        assert row[key if key != "name" else "client_name"] == want, key
    assert row["lookup_par"] is True and row["lookup_dpop"] is True
    inline = client_row(app, ids["Inline Keys Shop"])
    assert inline["jwks"] == keys["jwks"] and inline["jwks_uri"] is None
    assert inline["require_pushed_authorization_requests"] is False
    assert inline["backchannel_logout_uri"] is None

    first = exported(runner)
    every = by_name(first)["Every Option Shop"]
    assert {k: v for k, v in every.items() if k in EVERY_OPTION and k != "required_claims"} \
        == {k: v for k, v in EVERY_OPTION.items() if k != "required_claims"}
    assert every["required_claims"] == ["sub", "email", "name"]
    assert "backchannel_logout_uri" not in by_name(first)["Inline Keys Shop"]
    assert cli(runner, "apply", write(tmp_path, first, "export.yaml")).strip() == "no changes"

    clean(app)  # a fresh instance: the export alone recreates the same clients
    warned = runner.invoke(main, ["apply", str(tmp_path / "export.yaml")])
    assert warned.exit_code == 0, warned.output
    second = exported(runner)
    for doc in (first, second):
        for entry in doc["clients"]:
            entry.pop("client_id")
    assert second == first
    listed = json.loads(cli(runner, "clients", "list", "--json"))["clients"]
    again = {c["client_name"]: c for c in listed}
    assert set(again) == {"Every Option Shop", "Inline Keys Shop"}
    fresh = client_row(app, again["Every Option Shop"]["client_id"])
    assert fresh["lookup_par"] is True and fresh["frontchannel_logout_uri"] == FRONT


def test_par_from_the_file_is_enforced_and_a_file_without_the_key_keeps_it(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    spec = {"name": "PAR Shop", "redirect_uris": [REDIRECT],
            "require_pushed_authorization_requests": True}
    done = json.loads(cli(runner, "apply", write(tmp_path, {"version": 1, "clients": [spec]}),
                          "--json"))
    client_id = done["client_secrets"][0]["client_id"]
    direct = {"client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT,
              "scope": "openid", "code_challenge": "x" * 43, "code_challenge_method": "S256"}
    refused = app.test_client().get("/authorize", query_string=direct)
    assert refused.status_code == 400 and "Location" not in refused.headers
    # an older file (no new keys) changes nothing: the client keeps requiring PAR
    older = {"name": "PAR Shop", "client_id": client_id, "redirect_uris": [REDIRECT]}
    path = write(tmp_path, {"version": 1, "clients": [older]}, "older.yaml")
    assert cli(runner, "apply", path).strip() == "no changes"
    assert client_row(app, client_id)["lookup_par"] is True
    relaxed = {**older, "require_pushed_authorization_requests": False,
               "backchannel_logout_uri": BACK}
    path = write(tmp_path, {"version": 1, "clients": [relaxed]}, "relaxed.yaml")
    plan = cli(runner, "apply", path, "--dry-run")
    assert "require_pushed_authorization_requests: True -> False" in plan
    assert f"~ client_logout {client_id} (backchannel_logout_uri: None -> {BACK!r})" in plan
    cli(runner, "apply", path)
    row = client_row(app, client_id)
    assert row["lookup_par"] is False and row["backchannel_logout_uri"] == BACK
    assert app.test_client().get("/authorize", query_string=direct).status_code == 303
    # null removes a channel; leaving the key out keeps it
    removed = {**older, "backchannel_logout_uri": None}
    cli(runner, "apply", write(tmp_path, {"version": 1, "clients": [removed]}, "rm.yaml"))
    assert client_row(app, client_id)["backchannel_logout_uri"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"require_pushed_authorization_requests": "maybe"},
         "clients.0.require_pushed_authorization_requests: Input should be a valid boolean"),
        ({"dpop_bound_access_tokens": [True]},
         "clients.0.dpop_bound_access_tokens: Input should be a valid boolean"),
        ({"backchannel_logout_session_required": "sometimes"},
         "clients.0.backchannel_logout_session_required: Input should be a valid boolean"),
        ({"frontchannel_logout_uri": "https://elsewhere.example/fc"},
         "frontchannel_logout_uri: scheme, host and port must be those of a registered"),
        ({"backchannel_logout_uri": "http://shop.example/bc"},
         "backchannel_logout_uri: plain http is allowed only on a loopback host"),
        ({"jwks_uri": "https://shop.example/jwks.json"},
         "jwks: only used with auth_method private_key_jwt"),
        ({"require_pushed_authorization_request": True},
         "clients.0.require_pushed_authorization_request: Extra inputs are not permitted"),
    ],
)
def test_a_bad_value_is_refused_and_changes_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    base = {"name": "Shop", "redirect_uris": [REDIRECT]}
    unit = {"slug": "acme", "name": "ACME GmbH"}
    done = json.loads(cli(runner, "apply", write(tmp_path, {
        "version": 1, "units": [unit], "clients": [base]}), "--json"))
    client_id = done["client_secrets"][0]["client_id"]
    before = client_row(app, client_id)
    bad = {"version": 1, "units": [{**unit, "name": "ACME SE"}],
           "clients": [{**base, "client_id": client_id, **change},
                       {"name": "New Shop", "redirect_uris": [REDIRECT], **change}]}
    path = write(tmp_path, bad, "bad.yaml")
    out = cli(runner, "apply", path, code=1)
    assert "nothing was changed" in out and message in out, out
    refused = json.loads(cli(runner, "apply", path, "--json", code=1))
    assert refused["applied"] == 0 and any(message in m for m in refused["messages"])
    assert client_row(app, client_id) == before
    doc = exported(runner)
    assert [c["name"] for c in doc["clients"]] == ["Shop"]
    assert [u["name"] for u in doc["units"]] == ["ACME GmbH"]


def test_the_front_channel_is_checked_against_the_redirect_uris_of_the_same_file(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    spec = {"name": "Moving Shop", "redirect_uris": [REDIRECT]}
    done = json.loads(cli(runner, "apply", write(tmp_path, {"version": 1, "clients": [spec]}),
                          "--json"))
    client_id = done["client_secrets"][0]["client_id"]
    moved = {**spec, "client_id": client_id, "redirect_uris": ["https://new.example/cb"]}
    stale = {**moved, "frontchannel_logout_uri": FRONT}  # the old origin
    out = cli(runner, "apply", write(tmp_path, {"version": 1, "clients": [stale]}, "s.yaml"),
              code=1)
    assert "frontchannel_logout_uri: scheme, host and port" in out
    assert client_row(app, client_id)["redirect_uris"] == [REDIRECT]
    fresh = {**moved, "frontchannel_logout_uri": "https://new.example/fc"}
    cli(runner, "apply", write(tmp_path, {"version": 1, "clients": [fresh]}, "f.yaml"))
    row = client_row(app, client_id)
    assert row["redirect_uris"] == ["https://new.example/cb"]
    assert row["frontchannel_logout_uri"] == "https://new.example/fc"
