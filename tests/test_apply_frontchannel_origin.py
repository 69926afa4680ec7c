"""``idp apply``: a client's front-channel logout URI must keep the origin of one of
its redirect URIs (OIDC Front-Channel Logout §2; :func:`idp.interaction.rp_logout.
validate_channels`). A file that moves the redirect URIs to another origin and leaves
the channel out would otherwise keep framing (and sending ``iss``/``sid`` to) the old
origin without a word in the plan: it is refused, and nothing changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from flask.testing import FlaskCliRunner

from idp.cli import main

FRONT = "https://shop.example/frontchannel-logout"


def cli(runner: FlaskCliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def write(tmp_path: Path, data: dict[str, Any], name: str) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_moving_the_redirect_uris_away_from_the_front_channel_origin_is_refused(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    from idp.interaction import rp_logout
    from idp.release import clients

    first = {"name": "Shop", "redirect_uris": ["https://shop.example/callback"],
             "frontchannel_logout_uri": FRONT}
    done = json.loads(cli(runner, "apply", write(tmp_path, {"version": 1, "clients": [first]},
                                                 "one.yaml"), "--json"))
    client_id = done["client_secrets"][0]["client_id"]

    moved = {"name": "Shop", "client_id": client_id,
             "redirect_uris": ["https://elsewhere.example/callback"]}
    path = write(tmp_path, {"version": 1, "clients": [moved]}, "two.yaml")
    for args in ((path, "--dry-run"), (path,)):
        out = cli(runner, "apply", *args, code=1)
        assert "frontchannel_logout_uri" in out
    with app.app_context():
        row = clients.get(client_id)
        assert row is not None and row.redirect_uris == ["https://shop.example/callback"]
        assert rp_logout.channels(client_id).frontchannel_logout_uri == FRONT

    # moving both together, or dropping the channel, is fine
    both = {**moved, "frontchannel_logout_uri": "https://elsewhere.example/fc"}
    cli(runner, "apply", write(tmp_path, {"version": 1, "clients": [both]}, "three.yaml"))
    with app.app_context():
        assert rp_logout.channels(client_id).frontchannel_logout_uri == \
            "https://elsewhere.example/fc"
    dropped = {**moved, "redirect_uris": ["https://third.example/cb"],
               "frontchannel_logout_uri": None}
    cli(runner, "apply", write(tmp_path, {"version": 1, "clients": [dropped]}, "four.yaml"))
    with app.app_context():
        assert rp_logout.channels(client_id).frontchannel_logout_uri is None
