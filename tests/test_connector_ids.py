"""A deleted connector's id is never given to another connector: its callback, ACS
and metadata URLs embed the id, so reusing it would hand a new owner (possibly
another unit) the upstream answers and bookmarks meant for the old one. This holds
however the connector went (``idp connectors delete``, the console, with its unit)
and however the new one is made (the console's guided set-up, the service)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from connectors import ConfigurationError
from idp.cli import main
from idp.federation import admin
from idp.store import connectors_repo
from tests.support.login import csrf_token
from tests.support.oidc import make_account, make_unit, start_session

GOOGLE = ["--kind", "google", "--hd", "acme.example", "--client-id", "cid",
          "--client-secret", "s3cret"]


def cli(runner: FlaskCliRunner, *args: str) -> Any:
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def add_and_delete(runner: FlaskCliRunner, unit: str) -> str:
    """A connector of ``unit`` added and deleted through the CLI; its id."""
    made = cli(runner, "connectors", "add", "--unit", unit, *GOOGLE)
    cli(runner, "connectors", "delete", made["id"])
    return str(made["id"])


@pytest.fixture
def units(app: Flask) -> dict[str, str]:
    ada = make_account(app, "ada@acme.example")
    olga = make_account(app, "olga@other.example")
    return {"ada": ada, "olga": olga,
            "acme": make_unit(app, ada, "Acme", roles=["main_user"]),
            "other": make_unit(app, olga, "Other", roles=["main_user"])}


def test_the_service_refuses_a_deleted_connectors_id_with_a_clear_error(
    app: Flask, runner: FlaskCliRunner, units: dict[str, str]
) -> None:
    old = add_and_delete(runner, "acme")
    with app.app_context():
        with pytest.raises(ConfigurationError, match="never reused"):
            admin.create(units["other"], "google", client_id="cid", client_secret="s",
                         hosted_domains=["other.example"], actor="test", connector_id=old)
        with pytest.raises(ConfigurationError, match="never reused"):  # nor its old unit
            admin.create(units["acme"], "google", client_id="cid", client_secret="s",
                         hosted_domains=["acme.example"], actor="test", connector_id=old)
        assert connectors_repo.get(old) is None
        fresh = admin.create(units["other"], "google", client_id="cid", client_secret="s",
                             hosted_domains=["other.example"], actor="test")
        assert fresh.id != old


def test_the_id_of_a_connector_deleted_with_its_unit_stays_retired(
    app: Flask, runner: FlaskCliRunner, units: dict[str, str]
) -> None:
    made = cli(runner, "connectors", "add", "--unit", "acme", *GOOGLE)
    cli(runner, "units", "delete", "acme", "--yes")
    with app.app_context():
        assert connectors_repo.get(made["id"]) is None
        with pytest.raises(ConfigurationError, match="never reused"):
            admin.create(units["other"], "google", client_id="cid", client_secret="s",
                         hosted_domains=["other.example"], actor="test",
                         connector_id=made["id"])


def test_another_units_admin_cannot_take_over_a_deleted_connectors_id_in_the_console(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, units: dict[str, str]
) -> None:
    old = add_and_delete(runner, "acme")
    start_session(app, client, units["olga"])
    new = f"/admin/units/{units['other']}/sso/new/google"
    html = client.get(f"{new}?id={old}").get_data(as_text=True)
    shown = re.search(r'name="connector_id" value="([0-9a-f]{32})"', html)
    assert shown is not None and shown.group(1) != old  # never offered again
    assert f"/federation/{old}/callback" not in html
    resp = client.post(new, data={  # a forged form naming the old id
        "csrf_token": csrf_token(html), "connector_id": old, "client_id": "cid",
        "client_secret": "s", "hosted_domains": "other.example"})
    assert resp.status_code == 303
    with app.app_context():
        made = connectors_repo.list_all(units["other"])
        assert len(made) == 1 and made[0].id != old
        assert connectors_repo.get(old) is None
    assert client.get(f"/federation/{old}/metadata").status_code == 404
