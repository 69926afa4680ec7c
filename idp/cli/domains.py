"""``idp domains add|check|verify|list|show|remove|rules|explain``.

The rules live in :mod:`idp.domains.registry` (claims, DNS proof) and :mod:`idp.domains.rules`
(auto-join, SSO, break-glass, the ``explain`` dry-run); this module parses and
reports. ``--json`` prints one JSON document; a refused change prints
``{"error": code, "error_description": ...}`` and exits 1.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from idp.cli.units import actor, echo_json, fail


@click.group("domains")
def domains_group() -> None:
    """E-mail domains of business units: DNS proof, rules, home-realm discovery."""


@domains_group.command("add")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add_command(unit_ref: str, domain: str, as_json: bool) -> None:
    """Claim DOMAIN (or *.DOMAIN with its subdomains) and print the TXT record to create."""
    from idp.domains import registry as domains
    from idp.units import registry as units

    try:
        row = domains.claim(unit_ref, domain, actor=actor())
    except (domains.DomainError, units.UnitError) as exc:
        fail(as_json, exc.code, str(exc))
    challenge = domains.challenge_of(row)
    data = {"id": row.id, "unit_id": row.unit_id, **challenge.to_dict()}
    if as_json:
        echo_json(data)
        return
    click.echo(f"Claimed {challenge.domain} ({challenge.state}). Create this DNS record:")
    click.echo(f'  {challenge.record_name}.  IN  TXT  "{challenge.value}"')
    deadline = f"{challenge.deadline_at:%Y-%m-%d}"
    click.echo(f"then run `idp domains check {row.name}` (deadline {deadline}).")


def _report(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("nothing to check")
    for r in rows:
        click.echo(f"{r['domain']:<32} {r['before']} -> {r['state']:<9} {r['detail']}")


@domains_group.command("check")
@click.argument("domain", required=False)
@click.option("--all", "force", is_flag=True, help="Re-check every verified domain now.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of results.")
@with_appcontext
def check_command(domain: str | None, force: bool, as_json: bool) -> None:
    """Check DOMAIN, or every pending domain and the verified ones due for a re-check.

    Run it periodically: a verified domain whose record is gone lapses (state
    failed) and stops auto-joining."""
    from idp.domains import registry as domains

    try:
        reports = domains.check(domain, force=force, actor=actor())
    except domains.DomainError as exc:
        fail(as_json, exc.code, str(exc))
    _report([r.to_dict() for r in reports], as_json)


@domains_group.command("verify")
@click.argument("domain")
@click.option("--manual", is_flag=True, help="Mark verified by hand (needs --reason).")
@click.option("--reason", default=None, help="Why, for the audit log.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def verify_command(domain: str, manual: bool, reason: str | None, as_json: bool) -> None:
    """Verify DOMAIN by DNS now, or with --manual --reason by hand (audited)."""
    from idp.domains import registry as domains

    try:
        if manual:
            row = domains.verify_manually(domain, reason or "", actor())
            data = domains.describe(row)
        else:
            data = domains.check(domain, actor=actor())[0].to_dict()
    except domains.DomainError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(data)
    else:
        click.echo(f"{data['domain']}: {data['state']}")


@domains_group.command("list")
@click.option("--unit", "unit_ref", default=None, help="Only this unit (id or slug).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(unit_ref: str | None, as_json: bool) -> None:
    """List claimed domains with their state."""
    from idp.domains import registry as domains
    from idp.units import registry as units

    try:
        rows = [domains.describe(d) for d in domains.list_claims(unit_ref)]
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        live = "in force" if r["in_force"] else "not in force"
        reason = f" ({r['failure_reason']})" if r["failure_reason"] else ""
        click.echo(f"{r['domain']:<32} {r['unit']:<20} {r['state']}{reason}, {live}")


@domains_group.command("show")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show_command(domain: str, as_json: bool) -> None:
    """Show a claim: state, TXT record, rules and break-glass addresses."""
    from idp.domains import registry as domains

    try:
        data = domains.describe(domains.get(domain))
    except domains.DomainError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@domains_group.command("remove")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def remove_command(domain: str, as_json: bool) -> None:
    """Drop the claim of DOMAIN and its rules (memberships stay)."""
    from idp.domains import registry as domains

    try:
        removed = domains.remove(domain, actor=actor())
    except domains.DomainError as exc:
        fail(as_json, exc.code, str(exc))
    if not removed:
        fail(as_json, "not_found", f"no claim of {domain}")
    if as_json:
        echo_json({"domain": domain, "removed": True})
    else:
        click.echo(f"removed {domain}")


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.BadParameter(f"{what}: expected VALUE=UNIT, got {item!r}")
        out[key.strip()] = value.strip()
    return out


@domains_group.command("rules")
@click.argument("domain")
@click.option("--auto-join/--no-auto-join", default=None, help="E-mail code sign-ins join.")
@click.option("--require-sso/--no-require-sso", default=None, help="Only SSO, no e-mail codes.")
@click.option("--connector", default=None, help="Connector id for require-sso ('' to unset).")
@click.option("--default-role", default=None, help="Role given on auto-join.")
@click.option("--subunit-attribute", default=None, help="Profile attribute ('' to unset).")
@click.option("--subunit", "subunits", multiple=True, metavar="VALUE=UNIT",
              help="Attribute VALUE assigns sub-unit UNIT (repeatable; replaces the map).")
@click.option("--break-glass", "add_bg", multiple=True, metavar="EMAIL",
              help="Address allowed e-mail codes despite require-sso (repeatable).")
@click.option("--no-break-glass", "remove_bg", multiple=True, metavar="EMAIL",
              help="Remove a break-glass address (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def rules_command(
    domain: str, auto_join: bool | None, require_sso: bool | None, connector: str | None,
    default_role: str | None, subunit_attribute: str | None, subunits: tuple[str, ...],
    add_bg: tuple[str, ...], remove_bg: tuple[str, ...], as_json: bool,
) -> None:
    """Show or change the rules of DOMAIN (only the options given change)."""
    from idp.domains import registry as domains
    from idp.domains import rules as domain_rules
    from idp.units import registry as units

    kwargs: dict[str, Any] = {
        "auto_join": auto_join,
        "default_role": default_role,
        "require_sso": require_sso,
        "add_break_glass": add_bg,
        "remove_break_glass": remove_bg,
        "actor": actor(),
    }
    if connector is not None:
        kwargs["connector"] = connector or None
    if subunit_attribute is not None:
        kwargs["subunit_attribute"] = subunit_attribute or None
    if subunits:
        kwargs["subunit_map"] = _pairs(subunits, "--subunit")
    try:
        row = domain_rules.set_rules(domain, **kwargs)
    except (domains.DomainError, units.UnitError) as exc:
        fail(as_json, exc.code, str(exc))
    data = {"domain": domains.display_name(row), "state": row.state,
            **domain_rules.rules_of(row)}
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@domains_group.command("explain")
@click.argument("email")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE",
              help="Profile attribute for sub-unit rules (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def explain_command(email: str, attrs: tuple[str, ...], as_json: bool) -> None:
    """Dry-run: which unit, role and login method EMAIL gets, and why."""
    from idp.domains import rules as domain_rules

    attributes = _pairs(attrs, "--attr") if attrs else None
    result = domain_rules.explain(email, attributes)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(result.text())
