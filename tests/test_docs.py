"""The documentation stays true: every setting and every command is documented, the
README starts with the two commands, links resolve, and the deploy examples are
accepted by the programs they configure."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp.cli import main
from idp.settings import Settings
from tests.support.backends import missing

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))


def readme_table_rows() -> dict[str, tuple[str, str]]:
    """``IDP_*`` name -> (default, meaning) from the README configuration table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in README.splitlines():
        m = re.match(r"^\| `(IDP_[A-Z0-9_]+)` \| (.*?) \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def command_paths(group: click.Group, prefix: str = "idp") -> list[str]:
    paths: list[str] = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            paths.extend(command_paths(cmd, f"{prefix} {name}"))
        else:
            paths.append(f"{prefix} {name}")
    return paths


def cli_envvars(group: click.Group) -> set[str]:
    """Environment variables that command options read (``envvar=``)."""
    found: set[str] = set()
    for cmd in group.commands.values():
        if isinstance(cmd, click.Group):
            found |= cli_envvars(cmd)
        for param in cmd.params:
            names = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
            found |= {n for n in names if isinstance(n, str)}
    return found


def test_readme_opens_with_make_run_and_make_test() -> None:
    lines = [line for line in README.splitlines() if line.strip()]
    assert lines[0].startswith("# ")
    assert lines[1].startswith("```")
    assert lines[2].startswith("make run")
    assert lines[3].startswith("make test")
    assert lines[4] == "```"


def test_every_setting_is_in_the_readme_table() -> None:
    rows = readme_table_rows()
    fields = {f"IDP_{name.upper()}": field for name, field in Settings.model_fields.items()}
    missing_rows = sorted(set(fields) - set(rows))
    assert not missing_rows, f"add these settings to the README table: {missing_rows}"
    stale = sorted(set(rows) - set(fields))
    assert not stale, f"the README documents settings that do not exist: {stale}"
    for name, field in fields.items():
        default, meaning = rows[name]
        assert meaning.strip(), f"{name} has no meaning in the README"
        value = field.default
        if value is None:
            assert default == "unset", f"{name}: README says {default}, code says unset"
        elif isinstance(value, bool):
            assert default == f"`{str(value).lower()}`", f"{name}: default differs"
        elif isinstance(value, int | float) or (isinstance(value, str) and str(ROOT) not in value):
            shown = f"`{value}`" if value != "" else "empty"
            assert default == shown, f"{name}: README says {default}, code says {shown}"


def test_every_idp_variable_mentioned_in_docs_exists() -> None:
    known = {f"IDP_{name.upper()}" for name in Settings.model_fields}
    texts = [README, *(p.read_text() for p in DOCS)]
    texts += [p.read_text() for p in (ROOT / "deploy").iterdir() if p.is_file()]
    mentioned = set()
    for text in texts:
        mentioned |= set(re.findall(r"\bIDP_[A-Z0-9_]*[A-Z0-9]\b", text))
    # Test-suite variables, documented in the README's test section.
    test_only = {"IDP_TEST_NAMESPACE", "IDP_TEST_REQUIRE_SERVICES", "IDP_TEST_MATRIX"}
    unknown = sorted(mentioned - known - test_only - cli_envvars(main))
    assert not unknown, f"docs mention settings that do not exist: {unknown}"


def test_every_command_is_in_the_readme() -> None:
    undocumented = [p for p in command_paths(main) if f"`{p}" not in README]
    assert not undocumented, f"add these commands to the README's CLI table: {undocumented}"


def test_readme_and_docs_links_resolve() -> None:
    for path in [ROOT / "README.md", *DOCS, ROOT / "deploy" / "README.md"]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


def test_operations_guide_states_the_email_code_assurance_level() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    assert "possession factor below NIST AAL2" in text


def systemd_commands() -> list[list[str]]:
    unit = (ROOT / "deploy" / "unitgate.service").read_text()
    commands = []
    for line in unit.splitlines():
        if line.startswith(("ExecStart=", "ExecStartPre=")):
            argv = shlex.split(line.split("=", 1)[1])
            assert argv[0].endswith("/idp")
            commands.append(argv[1:])
    return commands


def test_systemd_unit_runs_real_idp_commands() -> None:
    commands = systemd_commands()
    assert [c[0] for c in commands] == ["init", "serve"]
    for args in commands:
        command = main.commands[args[0]]
        ctx = command.make_context(args[0], args[1:])  # raises on unknown options
        ctx.close()
        if args[0] == "serve":
            assert ctx.params["proxy_hops"] == 1  # the nginx example is one proxy


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "login.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_nginx_example_is_valid_nginx(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        missing("nginx not installed (Debian package nginx-light)")
    cert, key = self_signed(tmp_path)
    site = (ROOT / "deploy" / "nginx-unitgate.conf").read_text()
    site = site.replace("/etc/ssl/certs/login.example.com.pem", str(cert))
    site = site.replace("/etc/ssl/private/login.example.com.key", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


@pytest.mark.parametrize("doc", ["operations.md", "architecture.md"])
def test_docs_exist_and_have_a_title(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text()
    assert text.startswith("# ")


def test_the_data_model_diagram_shows_every_table_and_foreign_key() -> None:
    """docs/architecture.md's diagram of tables stays true to the models."""
    from idp.store.models import Base

    text = (ROOT / "docs" / "architecture.md").read_text()
    diagram = text[text.index("```mermaid\nerDiagram"):]
    diagram = diagram[: diagram.index("\n```\n")]
    shown = set(re.findall(r"^    ([a-z_]+) \{$", diagram, re.M))
    assert shown == set(Base.metadata.tables), "tables missing or extra in the diagram"
    relations = set(re.findall(r"^    ([a-z_]+) \|\|--o[|{] ([a-z_]+) : ([a-z_]+)$",
                               diagram, re.M))
    expected = {
        (fk.column.table.name, table.name, fk.parent.name)
        for table in Base.metadata.tables.values()
        for fk in table.foreign_keys
    }
    assert relations == expected, "foreign keys missing or extra in the diagram"
