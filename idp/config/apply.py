"""``idp apply FILE.yaml [--dry-run]``: make units, profile fields, connectors,
domains, domain rules, merchant clients and SAML service providers match a file
(:mod:`idp.config.schema`).

How it works (like Keycloak's realm import, but idempotent and with a plan):

1. The file is parsed and validated against the schema (unknown keys are errors).
2. A *plan* compares the file with the database and lists every change (create,
   update, delete) with the fields it changes; references (parents, connectors,
   sub-units, roles, domain owners) are checked now, so a bad file writes nothing.
3. ``--dry-run`` prints the plan and stops. Otherwise each change runs through the
   same domain services as the CLI commands (validation, audit events), one
   transaction each, in dependency order: units (parents first), profile fields,
   connectors, domains, clients (and their logout channels), SAML service providers,
   rules, then removed connectors.

Applying the same file twice changes nothing the second time. A failure midway
(say an upstream refuses metadata) stops with the changes made so far reported;
fixing the file and applying again converges. New domains are claimed ``pending``:
the result lists the TXT records to publish. Newly registered clients' secrets are
in the result once. Secrets never appear in the file: connectors name an environment
variable (``client_secret_env``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from idp.config import connectors as config_connectors
from idp.config import saml_sps as config_sps
from idp.config.plan import Change, Planner
from idp.config.schema import ConfigFile
from idp.domains import registry as domains
from idp.units import registry as units

MAX_FILE_BYTES = 1024 * 1024


class ApplyError(Exception):
    """The file cannot be applied; ``messages`` say why, ``applied`` how many
    changes were made before the failure (0 when the plan refused it)."""

    def __init__(self, messages: list[str], applied: int = 0) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages
        self.applied = applied


@dataclass
class ApplyResult:
    """What a run did (or, with ``dry_run``, would do)."""

    dry_run: bool
    changes: list[Change]
    challenges: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "changes": [c.to_dict() for c in self.changes],
            "challenges": self.challenges,
            "client_secrets": self.secrets,
            "warnings": self.warnings,
        }


def parse(text: str) -> ConfigFile:
    """Validate a YAML/JSON document; :class:`ApplyError` lists every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ApplyError([f"not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ApplyError(["the file must be a mapping with version: 1"])
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ApplyError(
            [
                f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}"
                for err in exc.errors()
            ]
        ) from exc


def load(path: str | Path) -> ConfigFile:
    """Read and validate the file at ``path`` (at most 1 MiB, UTF-8)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ApplyError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise ApplyError([f"{path} is larger than 1 MiB"])
    try:
        return parse(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApplyError([f"{path} is not UTF-8"]) from exc


def _expected_errors() -> tuple[type[BaseException], ...]:
    from connectors import ConfigurationError
    from idp.release.clients import ClientRegistrationError

    return (
        units.UnitError,
        domains.DomainError,
        config_connectors.ConnectorPlanError,
        ConfigurationError,
        ClientRegistrationError,
        config_sps.SpApplyError,
    )


def plan(cfg: ConfigFile, actor: str = "apply") -> list[Change]:
    """The changes applying ``cfg`` would make, in execution order; raises
    :class:`ApplyError` when the file cannot be applied. Writes nothing."""
    planner = Planner(cfg, actor)
    changes = planner.plan()
    if planner.errors:
        raise ApplyError(planner.errors)
    return changes


def apply(cfg: ConfigFile, dry_run: bool = False, actor: str = "apply") -> ApplyResult:
    """Make the database match ``cfg`` (or, with ``dry_run``, only report what that
    would change). Idempotent: a second run returns no changes."""
    planner = Planner(cfg, actor)
    changes = planner.plan()
    if planner.errors:
        raise ApplyError(planner.errors)
    result = ApplyResult(dry_run, changes, warnings=planner.warnings)
    if dry_run:
        return result
    blocked = [f"{c.kind} {c.key}: {c.unsupported}" for c in changes if c.unsupported]
    if blocked:
        raise ApplyError(blocked)
    expected = _expected_errors()
    for done, change in enumerate(changes):
        assert change.run is not None
        try:
            out = change.run()
        except expected as exc:
            raise ApplyError([f"{change.kind} {change.key}: {exc}"], applied=done) from exc
        if change.kind == "domain" and change.action == "create":
            result.challenges.append(domains.challenge_of(out).to_dict())
        if change.kind == "client" and (change.action == "create" or out[1]):
            client, secret = out  # an update shows a secret only when it made a new one
            entry = {"name": client.name, "client_id": client.client_id}
            if secret:
                entry["client_secret"] = secret
            result.secrets.append(entry)
    return result
