"""``idp saml sps add|list|show|update|delete``: registration from metadata files and
URLs, changes in place, and the rules that refuse unsafe registrations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.cli import main
from idp.store.db import db
from idp.store.models import AuditEvent
from tests.support import saml_flow
from tests.support.saml_sp import ServiceProvider
from tests.support.saml_sp import metadata_server as serve_metadata


def run(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(main, ["saml", "sps", *args])


def ok(runner: FlaskCliRunner, *args: str) -> Any:
    result = run(runner, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def refused(runner: FlaskCliRunner, *args: str) -> str:
    result = run(runner, *args)
    assert result.exit_code != 0
    return result.output


@pytest.fixture
def sp(client: FlaskClient) -> ServiceProvider:
    return ServiceProvider(saml_flow.idp_metadata(client), want_assertions_encrypted=True)


@pytest.fixture
def metadata_file(tmp_path: Path, sp: ServiceProvider) -> Path:
    path = tmp_path / "sp.xml"
    path.write_bytes(sp.metadata())
    return path


@pytest.fixture
def metadata_server(sp: ServiceProvider) -> Iterator[str]:
    """A real HTTP server on loopback serving the SP's metadata."""
    with serve_metadata(sp.metadata()) as served:
        yield served.base


def test_add_from_file_then_list_show_delete(
    app: Flask, runner: FlaskCliRunner, metadata_file: Path, sp: ServiceProvider
) -> None:
    added = ok(runner, "add", "--metadata", str(metadata_file), "--name", "Office Supplies")
    assert added["entity_id"] == sp.entity_id
    assert added["name"] == "Office Supplies"
    assert added["acs_urls"] == [sp.acs_url]
    assert added["slo_urls"] == [sp.sls_url]
    assert added["nameid_format"] == "persistent"
    assert added["sign_assertion"] is True and added["sign_response"] is True
    assert added["encrypt_assertion"] is True
    assert added["encryption_method"].endswith("aes256-gcm")
    assert added["idp_initiated"] is False and added["require_signed_requests"] is False
    assert "email" in added["attributes"] and "cost_centre" in added["attributes"]

    listed = ok(runner, "list")["service_providers"]
    assert [r["entity_id"] for r in listed] == [sp.entity_id]
    assert ok(runner, "show", sp.entity_id)["id"] == added["id"]
    assert ok(runner, "show", added["id"])["entity_id"] == sp.entity_id
    text = run(runner, "show", added["id"]).output
    assert "entity_id: " + sp.entity_id in text

    assert "already registered" in refused(runner, "add", "--metadata", str(metadata_file))

    deleted = ok(runner, "delete", sp.entity_id)
    assert deleted == {"deleted": added["id"], "entity_id": sp.entity_id}
    assert ok(runner, "list")["service_providers"] == []
    assert "no SAML service provider" in refused(runner, "show", sp.entity_id)
    assert "no SAML service provider" in refused(runner, "delete", sp.entity_id)
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.at)]
    assert actions[-2:] == ["saml_sp.add", "saml_sp.delete"]


@pytest.mark.parametrize("settings_overrides", [{"backchannel_allow_private": True}])
def test_add_from_url_with_options(
    runner: FlaskCliRunner, metadata_server: str, sp: ServiceProvider
) -> None:
    added = ok(
        runner,
        "add",
        "--metadata",
        metadata_server + "/saml/metadata",
        "--nameid-format",
        "email",
        "--no-sign-response",
        "--require-signed-requests",
        "--idp-initiated",
    )
    assert added["entity_id"] == sp.entity_id
    assert added["nameid_format"] == "email"
    assert added["sign_response"] is False and added["sign_assertion"] is True
    assert added["require_signed_requests"] is True and added["idp_initiated"] is True
    assert "cannot fetch" in refused(runner, "add", "--metadata", metadata_server + "/missing")


def test_unsafe_registrations_are_refused(
    runner: FlaskCliRunner, tmp_path: Path, sp: ServiceProvider, metadata_file: Path
) -> None:
    lax = ServiceProvider(sp.idp_metadata, host="lax.example", want_assertions_signed=False)
    path = tmp_path / "lax.xml"
    path.write_bytes(lax.metadata())
    assert "sign the response, the assertion, or both" in refused(
        runner, "add", "--metadata", str(path), "--no-sign-response", "--no-sign-assertion"
    )
    wants_signed = ServiceProvider(sp.idp_metadata, host="strict.example")
    path = tmp_path / "strict.xml"
    path.write_bytes(wants_signed.metadata())
    assert "requires signed assertions" in refused(
        runner, "add", "--metadata", str(path), "--no-sign-assertion"
    )

    plain = sp.metadata().replace(
        b"https://merchant.example/saml/acs", b"http://merchant.example/saml/acs"
    )
    path = tmp_path / "plain.xml"
    path.write_bytes(plain)
    assert "https" in refused(runner, "add", "--metadata", str(path))

    dtd = b'<!DOCTYPE x [<!ENTITY e "boom">]>' + sp.metadata().split(b"?>", 1)[-1]
    path = tmp_path / "dtd.xml"
    path.write_bytes(dtd)
    assert "document type" in refused(runner, "add", "--metadata", str(path))

    assert "cannot read" in refused(runner, "add", "--metadata", str(tmp_path / "nope.xml"))
    assert "must be an https URL" in refused(runner, "add", "--metadata", "http://example.com/md")
    path = tmp_path / "junk.xml"
    path.write_bytes(b"<html>not metadata</html>")
    assert "EntityDescriptor" in refused(runner, "add", "--metadata", str(path))


def test_signed_requests_need_a_signing_certificate(
    runner: FlaskCliRunner, tmp_path: Path, sp: ServiceProvider
) -> None:
    from lxml import etree

    doc = etree.fromstring(sp.metadata())
    for kd in doc.iter("{urn:oasis:names:tc:SAML:2.0:metadata}KeyDescriptor"):
        kd.getparent().remove(kd)
    path = tmp_path / "nocert.xml"
    path.write_bytes(etree.tostring(doc))
    assert "no signing certificate" in refused(
        runner, "add", "--metadata", str(path), "--require-signed-requests"
    )
    added = ok(runner, "add", "--metadata", str(path))
    assert added["encrypt_assertion"] is False and added["signing_certificates"] == 0


def test_update_changes_an_sp_in_place_audited(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, metadata_file: Path, sp: ServiceProvider
) -> None:
    import getpass

    added = ok(runner, "add", "--metadata", str(metadata_file), "--name", "Office Supplies")
    updated = ok(runner, "update", added["id"], "--name", "Office Supplies Ltd",
                 "--nameid-format", "email", "--no-sign-response", "--idp-initiated")
    assert updated["id"] == added["id"] and updated["entity_id"] == sp.entity_id
    assert updated["name"] == "Office Supplies Ltd" and updated["nameid_format"] == "email"
    assert updated["sign_response"] is False and updated["sign_assertion"] is True
    assert updated["idp_initiated"] is True
    assert updated["changed"] == ["idp_initiated", "name", "nameid_format", "sign_response"]
    assert ok(runner, "show", sp.entity_id)["name"] == "Office Supplies Ltd"
    # new metadata of the same entity ID, by entity ID; what is not given stays
    moved = sp.metadata().replace(b"https://merchant.example/saml/acs",
                                  b"https://merchant.example/saml/acs-v2")
    path = tmp_path / "moved.xml"
    path.write_bytes(moved)
    updated = ok(runner, "update", sp.entity_id, "--metadata", str(path))
    assert updated["acs_urls"] == ["https://merchant.example/saml/acs-v2"]
    assert updated["changed"] == ["acs_urls", "metadata"]
    assert updated["name"] == "Office Supplies Ltd" and updated["nameid_format"] == "email"
    # nothing to change: nothing written
    again = run(runner, "update", sp.entity_id, "--metadata", str(path), "--idp-initiated")
    assert again.exit_code == 0 and f"no change to {sp.entity_id}" in again.output
    assert ok(runner, "update", sp.entity_id, "--no-idp-initiated")["idp_initiated"] is False
    with app.app_context():
        events = [e for e in db.session.query(AuditEvent).order_by(AuditEvent.seq)
                  if e.action == "saml_sp.update"]
    assert len(events) == 3
    assert {e.actor for e in events} == {f"cli:{getpass.getuser()}"}
    assert {e.target for e in events} == {sp.entity_id}
    assert events[0].details["changed"] == ["idp_initiated", "name", "nameid_format",
                                            "sign_response"]


def test_update_refuses_unknown_sps_and_bad_values_without_a_traceback(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, metadata_file: Path, sp: ServiceProvider
) -> None:
    added = ok(runner, "add", "--metadata", str(metadata_file))

    def refused_with(code: int, *args: str) -> str:
        result = run(runner, "update", *args)
        assert result.exit_code == code, result.output
        assert isinstance(result.exception, SystemExit)  # a message, not a crash
        assert "Traceback" not in result.output
        return result.output

    assert "no SAML service provider 'https://nobody.example/md'" in refused_with(
        1, "https://nobody.example/md", "--name", "X")
    assert "Invalid value for '--nameid-format'" in refused_with(
        2, added["id"], "--nameid-format", "unspecified")
    assert "requires signed assertions" in refused_with(1, added["id"], "--no-sign-assertion")
    assert "name: required" in refused_with(1, added["id"], "--name", "  ")
    assert "cannot read" in refused_with(1, added["id"], "--metadata", str(tmp_path / "no.xml"))
    other = ServiceProvider(sp.idp_metadata, host="other.example")
    path = tmp_path / "other.xml"
    path.write_bytes(other.metadata())
    assert "the metadata is that of" in refused_with(1, added["id"], "--metadata", str(path))
    # the SP is as it was, and no change was audited
    assert ok(runner, "show", added["id"]) == added
    with app.app_context():
        assert not [e for e in db.session.query(AuditEvent) if e.action == "saml_sp.update"]
