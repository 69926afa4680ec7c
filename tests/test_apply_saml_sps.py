"""``idp apply`` / ``idp export`` carry SAML service providers (``saml_sps``): every
option of ``idp saml sps add`` and the metadata (with it the SOAP SingleLogoutService
that logout without a browser uses). Export -> apply round-trips through the CLI; a
bad value is refused with a message naming the SP, and nothing changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.cli import main
from tests.support import saml_flow
from tests.support.apps import clean
from tests.support.saml_sp import ServiceProvider, with_soap_logout

HOST = "travel.example"
ENTITY = f"https://{HOST}/saml/metadata"


def metadata(client: FlaskClient, soap_url: str, host: str = HOST) -> bytes:
    """The SP's metadata with a SOAP SingleLogoutService at ``soap_url``."""
    return with_soap_logout(ServiceProvider(saml_flow.idp_metadata(client), host=host),
                            soap_url)


def cli(runner: FlaskCliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def write(tmp_path: Path, data: Any, name: str = "unitgate.yaml") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def show(runner: FlaskCliRunner, ref: str = ENTITY) -> dict[str, Any]:
    return dict(json.loads(cli(runner, "saml", "sps", "show", ref, "--json")))


EVERY_OPTION = {
    "entity_id": ENTITY,
    "name": "Travel Portal",
    "nameid_format": "email",
    "sign_assertion": True,
    "sign_response": False,
    "require_signed_requests": True,
    "idp_initiated": True,
}


def test_every_option_and_the_soap_logout_url_round_trip(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    md = tmp_path / "travel.xml"
    md.write_bytes(metadata(client, "https://travel.example/saml/soap"))
    path = write(tmp_path, {"version": 1, "saml_sps": [{**EVERY_OPTION, "metadata": str(md)}]})
    plan = cli(runner, "apply", path, "--dry-run")
    assert f"+ saml_sp {ENTITY} (name='Travel Portal', nameid_format='email'" in plan
    cli(runner, "apply", path)
    sp = show(runner)
    for key, value in EVERY_OPTION.items():
        assert sp[key] == value, key
    assert "https://travel.example/saml/soap" in sp["slo_urls"]
    assert cli(runner, "apply", path).strip() == "no changes"

    first = json.loads(cli(runner, "export", "--json"))
    [entry] = first["saml_sps"]
    assert {k: entry[k] for k in EVERY_OPTION} == EVERY_OPTION
    assert "https://travel.example/saml/soap" in entry["metadata"]
    exported = write(tmp_path, cli(runner, "export"), "export.yaml")
    assert cli(runner, "apply", exported).strip() == "no changes"

    clean(app)  # a fresh instance: the export (metadata inline) registers the SP again
    cli(runner, "apply", exported)
    again = json.loads(cli(runner, "export", "--json"))
    assert again["saml_sps"] == first["saml_sps"]
    assert "https://travel.example/saml/soap" in show(runner)["slo_urls"]


def test_options_and_metadata_change_in_place(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    with app.app_context():
        from idp.saml import registry

        registry.register(metadata(client, "https://travel.example/saml/soap"), actor="test")
    before = show(runner)
    assert (before["nameid_format"], before["idp_initiated"]) == ("persistent", False)
    # a file that only names the SP changes nothing (older files keep working)
    path = write(tmp_path, {"version": 1, "saml_sps": [{"entity_id": ENTITY}]})
    assert cli(runner, "apply", path).strip() == "no changes"
    new_md = tmp_path / "new.xml"
    new_md.write_bytes(metadata(client, "https://travel.example/saml/soap-v2"))
    path = write(tmp_path, {"version": 1, "saml_sps": [{
        "entity_id": ENTITY, "name": "Travel", "idp_initiated": True,
        "metadata": str(new_md)}]}, "changed.yaml")
    plan = cli(runner, "apply", path, "--dry-run")
    assert f"~ saml_sp {ENTITY} (" in plan and "idp_initiated: False -> True" in plan
    assert "soap-v2" in plan and show(runner) == before
    cli(runner, "apply", path)
    after = show(runner)
    assert (after["name"], after["idp_initiated"], after["id"]) == ("Travel", True, before["id"])
    assert "https://travel.example/saml/soap-v2" in after["slo_urls"]
    assert "https://travel.example/saml/soap" not in after["slo_urls"]
    assert cli(runner, "apply", path).strip() == "no changes"
    events = json.loads(cli(runner, "audit", "list", "--json"))["events"]
    [update] = [e for e in events if e["action"] == "saml_sp.update"]
    assert update["target"] == ENTITY


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"nameid_format": "bogus"}, "unknown NameID format 'bogus'"),
        ({"name": ""}, "saml_sps.0.name: String should have at least 1 character"),
        ({"sign_assertion": False}, "the SP's metadata requires signed assertions"),
        ({"idp_initiated": "maybe"}, "saml_sps.0.idp_initiated: Input should be a valid boolean"),
        ({"metadata": "OTHER"}, "the metadata is that of 'https://other.example/saml/metadata'"),
        ({"metadata": "/nonexistent/metadata.xml"}, "cannot read /nonexistent/metadata.xml"),
        ({"metadata": "<not-metadata/>"}, "not SAML 2.0 metadata"),
        ({"signed_requests": True}, "saml_sps.0.signed_requests: Extra inputs are not permitted"),
    ],
)
def test_a_bad_value_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, tmp_path: Path,
    entry: dict[str, Any], message: str,
) -> None:
    with app.app_context():
        from idp.saml import registry

        registry.register(metadata(client, "https://travel.example/saml/soap"), actor="test")
    before = show(runner)
    if entry.get("metadata") == "OTHER":
        other = tmp_path / "other.xml"
        other.write_bytes(metadata(client, "https://other.example/soap", host="other.example"))
        entry = {"metadata": str(other)}
    cli(runner, "apply", write(tmp_path, {"version": 1, "units": [
        {"slug": "acme", "name": "ACME GmbH"}]}, "unit.yaml"))
    bad = {"version": 1, "units": [{"slug": "acme", "name": "ACME SE"}],
           "saml_sps": [{"entity_id": ENTITY, **entry}]}
    out = cli(runner, "apply", write(tmp_path, bad, "bad.yaml"), code=1)
    assert "nothing was changed" in out and message in out, out
    assert show(runner) == before
    assert json.loads(cli(runner, "export", "--json"))["units"][0]["name"] == "ACME GmbH"


def test_a_new_sp_needs_its_metadata(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, {"version": 1, "saml_sps": [{"entity_id": ENTITY, "name": "X"}]})
    out = cli(runner, "apply", path, code=1)
    assert f"saml_sp '{ENTITY}': metadata is required to register it" in out
    assert json.loads(cli(runner, "saml", "sps", "list", "--json")) == {"service_providers": []}
