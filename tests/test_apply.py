"""``idp apply`` / ``idp export``: validation, dry-run plans, idempotency, updates,
refusals that write nothing, and the export round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskCliRunner

from idp.cli import main
from idp.config import apply as config_apply
from idp.config import export as config_export
from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.store import connectors_repo, units_repo
from idp.units import registry as units
from tests.support.apps import clean

CONFIG = """
version: 1
units:
  - slug: acme-sales          # listed before its parent on purpose
    name: ACME Sales
    parent: acme
  - slug: acme
    name: ACME GmbH
    type: company
    permission_groups: [buyers, approvers]
    profile_fields:
      - {name: ship_to, label: Ship-to address, required: true}
      - {name: division, label: Division}
    connectors:
      - name: ACME Okta
        kind: okta
        issuer: https://acme.okta.example
        client_id: 0oa1example
        client_secret_env: H5_TEST_OKTA_SECRET
        mapping: {personnel_number: employeeNumber}
    domains:
      - name: acme.example
        rules:
          auto_join: true
          default_role: buyers
          require_sso: true
          connector: ACME Okta
          subunit_attribute: division
          subunits: {Sales: acme-sales}
          break_glass: [Root@acme.example]
      - name: "*.acme-group.example"
  - slug: jane
    name: Jane Doe
    type: person
clients:
  - name: Office Supplies Shop
    redirect_uris: [https://shop.example/callback]
    scope: openid profile email org
"""


@pytest.fixture(autouse=True)
def okta_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H5_TEST_OKTA_SECRET", "okta-client-secret")


def summary(result: config_apply.ApplyResult) -> list[tuple[str, str, str]]:
    return [(c.action, c.kind, c.key) for c in result.changes]


def run(text: str, dry_run: bool = False) -> config_apply.ApplyResult:
    return config_apply.apply(config_apply.parse(text), dry_run=dry_run, actor="test")


def test_dry_run_plans_everything_and_writes_nothing(app: Flask) -> None:
    with app.app_context():
        result = run(CONFIG, dry_run=True)
        assert summary(result) == [
            ("create", "unit", "acme"),
            ("create", "unit", "acme-sales"),
            ("create", "unit", "jane"),
            ("create", "profile_field", "acme/ship_to"),
            ("create", "profile_field", "acme/division"),
            ("create", "connector", "acme/ACME Okta"),
            ("create", "domain", "acme.example"),
            ("create", "domain", "acme-group.example"),
            ("create", "client", "Office Supplies Shop"),
            ("update", "rules", "acme.example"),
        ]
        rules = result.changes[-1].fields
        assert rules["require_sso"] == {"from": False, "to": True}
        assert rules["break_glass"] == {"from": [], "to": ["root@acme.example"]}
        assert units.list_units() == [] and domains.list_claims() == []
        assert result.challenges == [] and result.secrets == []


def test_apply_creates_and_a_second_apply_changes_nothing(app: Flask) -> None:
    with app.app_context():
        first = run(CONFIG)
        assert len(first.changes) == 10
        assert [c["record_name"] for c in first.challenges] == [
            "_unitgate-challenge.acme.example",
            "_unitgate-challenge.acme-group.example",
        ]
        [secret] = first.secrets
        assert secret["name"] == "Office Supplies Shop" and len(secret["client_secret"]) >= 40
        acme = units.get("acme")
        assert units.get("acme-sales").parent_id == acme.id
        assert units.get("jane").kind == "person"
        assert units.roles_for(acme)[-2:] == ("approvers", "buyers")
        [okta] = connectors_repo.list_all(acme.id)
        assert okta.kind == "okta" and okta.settings["client_id"] == "0oa1example"
        claim = domains.get("acme.example")
        assert claim.state == "pending" and claim.rule is not None
        assert claim.rule.sso_connector_id == okta.id
        assert domains.get("*.acme-group.example").include_subdomains is True
        assert run(CONFIG).changes == []
        assert run(CONFIG, dry_run=True).changes == []
        domains.verify_manually("acme.example", "test", "test")
        assert domain_rules.login_method_for_email("x@acme.example") == ("sso", okta.id)
        glass = domain_rules.explain("root@acme.example", {"division": "Sales"})
        assert (glass.unit_slug, glass.roles) == ("acme-sales", ["buyers"])


def test_changes_show_as_a_diff_and_apply(app: Flask) -> None:
    with app.app_context():
        run(CONFIG)
        changed = (
            CONFIG.replace("name: ACME GmbH", "name: ACME SE")
            .replace("      - {name: division, label: Division}\n", "")
            .replace("          subunit_attribute: division\n", "")
            .replace("          subunits: {Sales: acme-sales}\n", "")
            .replace('"*.acme-group.example"', '"acme-group.example"')
            .replace("default_role: buyers", "default_role: employee")
        )
        plan = run(changed, dry_run=True)
        assert summary(plan) == [
            ("update", "unit", "acme"),
            ("delete", "profile_field", "acme/division"),
            ("update", "domain", "acme-group.example"),
            ("update", "rules", "acme.example"),
        ]
        assert plan.changes[0].fields == {"name": {"from": "ACME GmbH", "to": "ACME SE"}}
        assert plan.changes[3].fields == {
            "default_role": {"from": "buyers", "to": "employee"},
        }
        assert plan.changes[0].text() == "~ unit acme (name: 'ACME GmbH' -> 'ACME SE')"
        run(changed)
        assert units.get("acme").name == "ACME SE"
        assert [f.name for f in units.fields("acme")] == ["ship_to"]
        assert domains.get("acme-group.example").include_subdomains is False
        assert run(changed).changes == []
        # Keys left out are left alone: the unit keeps its fields and domains.
        assert run("version: 1\nunits:\n  - slug: acme\n").changes == []
        dropped = run("version: 1\nunits:\n  - slug: acme\n    domains: []\n", dry_run=True)
        assert summary(dropped) == [
            ("delete", "domain", "acme-group.example"),
            ("delete", "domain", "acme.example"),
        ]


def test_removed_connectors_go_after_the_rules_stop_using_them(app: Flask) -> None:
    with app.app_context():
        run(CONFIG)
        without = CONFIG.replace("          require_sso: true\n          connector: ACME Okta\n",
                                 "          require_sso: false\n          connector: null\n")
        start = without.index("    connectors:")
        end = without.index("    domains:")
        without = without[:start] + "    connectors: []\n" + without[end:]
        plan = run(without)
        assert summary(plan)[-2:] == [
            ("update", "rules", "acme.example"),
            ("delete", "connector", "acme/ACME Okta"),
        ]
        assert connectors_repo.list_all(units.get("acme").id) == []
        assert run(without).changes == []


def test_connector_settings_and_secret_updates(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    with app.app_context():
        run(CONFIG)
        monkeypatch.setenv("H5_TEST_OKTA_SECRET", "rotated-secret")
        changed = CONFIG.replace("client_id: 0oa1example", "client_id: 0oa2example")
        plan = run(changed)
        [change] = plan.changes
        assert change.kind == "connector" and change.fields == {
            "client_id": {"from": "0oa1example", "to": "0oa2example"},
            "secret": {"from": "...", "to": "..."},
        }
        assert "rotated-secret" not in json.dumps(plan.to_dict())
        [okta] = connectors_repo.list_all(units.get("acme").id)
        assert okta.settings["client_id"] == "0oa2example"
        assert run(changed).changes == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\n", "version"),
        ("version: 1\nunits:\n  - slug: acme\n    nmae: typo\n", "units.0.nmae"),
        ("- just a list\n", "mapping"),
        ("version: 1\nunits: [{slug: Bad Slug, name: x}]\n", "slug"),
        ("version: 1\nunits: [{slug: a}]\n", "name is required"),
        ("version: 1\nunits: [{slug: a, name: A, parent: nope}]\n", "parent 'nope'"),
        ("version: 1\nunits: [{slug: a, name: A, parent: b}, {slug: b, name: B, parent: a}]\n",
         "cycle"),
        ("version: 1\nunits: [{slug: a, name: A, domains: [{name: gmail.com}]}]\n", "consumer"),
        ("version: 1\nunits: [{slug: a, name: A, domains: [{name: 'x..y'}]}]\n", "not a domain"),
        ("version: 1\nunits: [{slug: a, name: A, domains: [{name: a.example, rules: "
         "{default_role: boss}}]}]\n", "role 'boss'"),
        ("version: 1\nunits: [{slug: a, name: A, domains: [{name: a.example, rules: "
         "{require_sso: true, connector: Nope}}]}]\n", "no connector named 'Nope'"),
        ("version: 1\nunits: [{slug: a, name: A, connectors: [{name: O, kind: okta, "
         "client_secret_env: H5_UNSET_VARIABLE}]}]\n", "H5_UNSET_VARIABLE is not set"),
        ("version: 1\nunits: [{slug: a, name: A}, {slug: a, name: B}]\n", "twice"),
        ("{{{", "YAML"),
    ],
)
def test_bad_files_are_refused_before_any_write(app: Flask, text: str, message: str) -> None:
    with app.app_context():
        with pytest.raises(config_apply.ApplyError) as err:
            run(text)
        assert message in str(err.value)
        assert err.value.applied == 0
        assert units.list_units() == []


def test_a_domain_of_another_unit_is_refused(app: Flask) -> None:
    with app.app_context():
        units.create("Other", slug="other")
        domains.claim("other", "acme.example")
        with pytest.raises(config_apply.ApplyError) as err:
            run(CONFIG)
        assert err.value.messages == ["domain acme.example is claimed by another unit"]
        assert units_repo.by_slug("acme") is None


def test_clients_are_updated_in_place_and_converge(app: Flask) -> None:
    from idp.release import clients

    with app.app_context():
        first = run(CONFIG)
        [entry] = first.secrets
        client_id = entry["client_id"]
        changed = CONFIG.replace("https://shop.example/callback", "https://shop.example/cb2")
        changed = changed.replace("scope: openid profile email org", "scope: openid email")
        plan = run(changed, dry_run=True)
        [change] = plan.changes
        assert (change.action, change.kind, change.key) == ("update", "client", client_id)
        assert change.fields == {
            "redirect_uris": {"from": ["https://shop.example/callback"],
                              "to": ["https://shop.example/cb2"]},
            "scope": {"from": "openid profile email org", "to": "openid email"},
        }
        assert change.text().startswith(f"~ client {client_id} (")
        assert clients.get(client_id).redirect_uris == ["https://shop.example/callback"]
        done = run(changed)
        assert summary(done) == [("update", "client", client_id)]
        assert done.secrets == []  # the secret is kept, never shown again
        row = clients.get(client_id)
        assert (row.redirect_uris, row.scope) == (["https://shop.example/cb2"], "openid email")
        info = clients.lookup(client_id)
        assert info is not None and info.check_secret(entry["client_secret"])
        assert info.redirect_uri_registered("https://shop.example/cb2")
        assert not info.redirect_uri_registered("https://shop.example/callback")
        assert run(changed).changes == []  # converged
        assert len(clients.list_all()) == 1


def test_an_invalid_client_update_is_refused_before_any_write(app: Flask) -> None:
    from idp.release import clients

    with app.app_context():
        run(CONFIG)
        [row] = clients.list_all()
        for old, new, why in [
            ("https://shop.example/callback", "http://shop.example/callback", "plain http"),
            ("scope: openid profile email org", "scope: openid admin", "unsupported admin"),
        ]:
            changed = CONFIG.replace(old, new).replace("name: ACME GmbH", "name: ACME SE")
            with pytest.raises(config_apply.ApplyError) as err:
                run(changed)
            assert err.value.applied == 0
            assert "client 'Office Supplies Shop'" in str(err.value) and why in str(err.value)
            assert units_repo.by_slug("acme").name == "ACME GmbH"
        assert clients.get(row.client_id).redirect_uris == ["https://shop.example/callback"]


def test_export_round_trip(app: Flask) -> None:
    with app.app_context():
        run(CONFIG)
        exported = config_export.export_yaml()
        assert "okta-client-secret" not in exported
        assert run(exported).changes == []  # applying an export is a no-op
        data = yaml.safe_load(exported)
        assert [u["slug"] for u in data["units"]] == ["acme", "jane", "acme-sales"]
        data["units"][0]["connectors"][0]["client_secret_env"] = "H5_TEST_OKTA_SECRET"
        portable = yaml.safe_dump(data)
    clean(app)  # a fresh instance
    with app.app_context():
        assert units.list_units() == []
        result = run(portable)
        assert any("does not exist here" in w for w in result.warnings)
        again = yaml.safe_load(config_export.export_yaml())
        for doc in (data, again):
            for client in doc["clients"]:
                client.pop("client_id")
            for unit in doc["units"]:
                for conn in unit["connectors"]:
                    conn.pop("client_secret_env", None)
        assert again == data


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "unitgate.yaml"
    path.write_text(text)
    return str(path)


def cli(runner: FlaskCliRunner, *args: str, code: int = 0) -> Any:
    result = runner.invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_apply_dry_run_apply_and_export(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    plan = json.loads(cli(runner, "apply", path, "--dry-run", "--json"))
    assert plan["dry_run"] is True and len(plan["changes"]) == 10
    text = cli(runner, "apply", path, "--dry-run")
    assert "+ unit acme (name='ACME GmbH', type='company'" in text
    assert text.rstrip().endswith("dry run: 10 change(s) not applied")
    done = json.loads(cli(runner, "apply", path, "--json"))
    assert done["dry_run"] is False and len(done["challenges"]) == 2
    assert done["client_secrets"][0]["client_secret"]
    assert cli(runner, "apply", path).strip() == "no changes"
    exported = yaml.safe_load(cli(runner, "export"))
    assert exported["version"] == 1 and len(exported["units"]) == 3
    as_json = json.loads(cli(runner, "export", "--json"))
    assert as_json == exported
    out = tmp_path / "export.yaml"
    cli(runner, "export", "-o", str(out))
    assert yaml.safe_load(out.read_text()) == exported


def test_cli_reports_refusals(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nunits: [{slug: a, name: A, parent: nope}]\n")
    refused = json.loads(cli(runner, "apply", path, "--json", code=1))
    assert refused == {
        "error": "apply_failed",
        "messages": ["unit 'a': parent 'nope' does not exist"],
        "applied": 0,
    }
    text = cli(runner, "apply", path, code=1)
    assert "nothing was changed" in text
    missing = cli(runner, "apply", str(tmp_path / "none.yaml"), "--json", code=1)
    assert "cannot read" in missing


def test_require_totp_is_applied_after_the_unit_and_exported(app: Flask) -> None:
    text = "version: 1\nunits:\n  - {slug: vault, name: Vault AG, require_totp: true}\n"
    with app.app_context():
        planned = run(text, dry_run=True)
        assert summary(planned) == [("create", "unit", "vault"),
                                    ("update", "unit_policy", "vault")]
        assert summary(run(text)) == summary(planned)
        assert units.get("vault").require_totp is True
        assert run(text).changes == []
        exported = config_export.export_config()
        [vault] = [u for u in exported["units"] if u["slug"] == "vault"]
        assert vault["require_totp"] is True
        relaxed = run(text.replace("require_totp: true", "require_totp: false"))
        assert relaxed.changes[0].fields == {"require_totp": {"from": True, "to": False}}
        assert units.get("vault").require_totp is False
