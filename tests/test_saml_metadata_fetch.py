"""A SAML SP's metadata URL (``idp saml sps add --metadata URL``, ``saml_sps`` of
``idp apply``) is fetched under the webhooks' SSRF rules: a host that resolves to a
loopback, private or link-local address is refused before any connection (the plan of
``idp apply --dry-run`` fetches it too, so an apply file from elsewhere could
otherwise probe the operator's network), unless ``IDP_BACKCHANNEL_ALLOW_PRIVATE``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient, FlaskCliRunner

from idp.cli import main
from tests.support import saml_flow
from tests.support.saml_sp import MetadataServer, ServiceProvider, metadata_server


@pytest.fixture
def served(client: FlaskClient) -> Iterator[tuple[MetadataServer, ServiceProvider]]:
    """Valid SP metadata on a loopback HTTP server that counts its requests."""
    sp = ServiceProvider(saml_flow.idp_metadata(client), host="inside.example")
    with metadata_server(sp.metadata()) as state:
        yield state, sp


def _apply_file(tmp_path: Path, entity_id: str, url: str) -> str:
    path = tmp_path / "unitgate.yaml"
    path.write_text(yaml.safe_dump(
        {"version": 1, "saml_sps": [{"entity_id": entity_id, "metadata": url}]}))
    return str(path)


def test_an_apply_file_cannot_fetch_metadata_from_a_loopback_address(
    runner: FlaskCliRunner, tmp_path: Path, served: tuple[MetadataServer, ServiceProvider]
) -> None:
    state, sp = served
    path = _apply_file(tmp_path, sp.entity_id, state.url)
    for args in (["apply", path, "--dry-run"], ["apply", path]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, result.output
        assert "refused:" in result.output
    assert state.hits == []  # never connected
    listed = runner.invoke(main, ["saml", "sps", "list", "--json"])
    assert sp.entity_id not in listed.output


def test_an_https_metadata_url_on_a_private_address_is_refused(runner: FlaskCliRunner) -> None:
    for url in ("https://127.0.0.1:1/saml/metadata", "https://10.0.0.1/saml/metadata",
                "https://[::1]:1/saml/metadata"):
        result = runner.invoke(main, ["saml", "sps", "add", "--metadata", url])
        assert result.exit_code != 0
        assert "non-public address" in result.output, (url, result.output)


@pytest.mark.parametrize("settings_overrides", [{"backchannel_allow_private": True}])
def test_the_operator_may_allow_private_metadata_urls(
    runner: FlaskCliRunner, tmp_path: Path, served: tuple[MetadataServer, ServiceProvider]
) -> None:
    state, sp = served
    result = runner.invoke(main, ["apply", _apply_file(tmp_path, sp.entity_id, state.url)])
    assert result.exit_code == 0, result.output
    assert state.hits  # fetched (plan and run read the same bytes)
    listed = runner.invoke(main, ["saml", "sps", "list", "--json"])
    assert sp.entity_id in listed.output
