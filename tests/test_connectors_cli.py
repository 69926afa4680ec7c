"""``idp connectors add|list|show|delete``."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner

from idp.cli import main
from idp.store.db import db
from idp.store.models import Connector, Unit
from tests.support.saml_idp import SamlIdp


def _unit(app: Flask) -> str:
    with app.app_context():
        unit = Unit(name="Acme", slug="acme")
        db.session.add(unit)
        db.session.commit()
        return unit.id


def test_add_google_prints_callback_and_seals_the_secret(app: Flask,
                                                        runner: FlaskCliRunner) -> None:
    _unit(app)
    result = runner.invoke(main, ["connectors", "add", "--unit", "acme", "--kind", "google",
                                 "--hd", "acme.example", "--client-id", "cid",
                                 "--client-secret", "s3cret-value", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["callback_url"] == f"http://localhost/federation/{doc['id']}/callback"
    assert doc["settings"]["hosted_domains"] == ["acme.example"]
    assert "s3cret-value" not in result.output
    with app.app_context():
        row = db.session.get(Connector, doc["id"])
        assert row is not None and row.secret_sealed and "s3cret" not in row.secret_sealed
    shown = runner.invoke(main, ["connectors", "show", doc["id"], "--json"])
    assert json.loads(shown.output)["callback_url"] == doc["callback_url"]
    listed = json.loads(runner.invoke(main, ["connectors", "list", "--json"]).output)
    assert [c["id"] for c in listed] == [doc["id"]]
    deleted = runner.invoke(main, ["connectors", "delete", doc["id"], "--json"])
    assert json.loads(deleted.output) == {"id": doc["id"], "deleted": True}
    assert runner.invoke(main, ["connectors", "show", doc["id"]]).exit_code != 0


def test_add_saml_prints_acs_and_metadata_urls(app: Flask, runner: FlaskCliRunner,
                                               tmp_path: Path) -> None:
    _unit(app)
    metadata = tmp_path / "idp.xml"
    metadata.write_text(SamlIdp().metadata())
    result = runner.invoke(main, ["connectors", "add", "--unit", "acme", "--kind", "saml",
                                 "--metadata", str(metadata), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["acs_url"].endswith(f"/federation/{doc['id']}/acs")
    assert doc["metadata_url"] == doc["entity_id"]
    client = app.test_client()
    resp = client.get(f"/federation/{doc['id']}/metadata")
    assert resp.status_code == 200
    assert doc["acs_url"] in resp.get_data(as_text=True)


def test_unsafe_or_incomplete_settings_refused(app: Flask, runner: FlaskCliRunner) -> None:
    _unit(app)
    cases = [
        ["--kind", "google", "--hd", "gmail.com", "--client-id", "c", "--client-secret", "s"],
        ["--kind", "google", "--client-id", "c", "--client-secret", "s"],
        ["--kind", "microsoft", "--tenant", "common", "--client-id", "c",
         "--client-secret", "s"],
        ["--kind", "oidc", "--issuer", "http://idp.example", "--client-id", "c",
         "--client-secret", "s"],
        ["--kind", "okta", "--issuer", "https://acme.okta.example/x/y", "--client-id", "c",
         "--client-secret", "s"],
        ["--kind", "saml"],
    ]
    for args in cases:
        result = runner.invoke(main, ["connectors", "add", "--unit", "acme", *args, "--json"])
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output
    assert runner.invoke(main, ["connectors", "add", "--unit", "nope", "--kind", "google",
                               "--hd", "a.example", "--client-id", "c",
                               "--client-secret", "s"]).exit_code != 0
    with app.app_context():
        assert db.session.query(Connector).count() == 0
