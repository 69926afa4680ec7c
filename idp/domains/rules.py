"""Domain rules: what an e-mail domain of a company does at sign-in.

Per claimed domain (:mod:`idp.domains.registry`) a rule sets ``auto_join`` (e-mail code
sign-ins with that domain join the unit), ``default_role``, a sub-unit assignment by
a profile attribute (``subunit_attribute`` + ``subunit_map``), and ``require_sso``
(the domain must sign in through the unit's SSO connector; e-mail codes are refused
except for the named break-glass addresses).

Precedence, applied in this order by :func:`explain` (and so by every function
here):

1. An address without a valid domain matches nothing: e-mail code, no unit.
2. A consumer mail domain (gmail.com, ...) matches nothing, whatever is stored.
3. The claim: the exact claim of the address's domain, else the nearest enclosing
   wildcard claim (``*.acme.example``); only claims *in force* count (verified by
   DNS and re-checked within ``IDP_DOMAIN_VALIDITY_DAYS``, or verified by hand). A
   pending, failed, lapsed or stale claim matches nothing.
4. Login method: ``require_sso`` sends the address to the rule's connector (or the
   unit's first enabled connector); a break-glass address keeps the e-mail code; no
   usable connector means ``refused`` (fail closed, never a silent e-mail code).
5. Membership, for e-mail code sign-ins only and only with ``auto_join``: the
   sub-unit that ``subunit_map`` gives for the account's ``subunit_attribute``
   value (when it names a unit inside the domain's unit), else the domain's unit;
   roles ``[default_role]``.
6. An account that already belongs to that unit, or to any unit inside the
   domain's unit, keeps its memberships and roles unchanged.

Changing an e-mail address never changes unit membership by itself:
:func:`apply_auto_join` only acts on a *verified* address (``email_verified``), so
an account whose address was changed joins nothing until the new address is
proven by a code, and memberships are never removed because an address changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from idp import audit
from idp.accounts import accesses
from idp.domains import lookup as domain_lookup
from idp.domains import registry as domains
from idp.store import accesses_repo, domains_repo, unit_of_work, units_repo
from idp.store.models import Access, Account, BreakGlassAccount, Connector, Domain
from idp.units import registry as units

LoginMethod = Literal["email_code", "refused"] | tuple[Literal["sso"], str]
# Profile attributes a sub-unit rule may read besides unit field names: employer facts
# (from the sign-in's attributes or the first wallet form) and the account's locale.
ACCOUNT_ATTRIBUTES = ("department", "cost_centre", "personnel_number", "locale")


@dataclass
class Explanation:
    """The dry-run answer for one address: which claim, unit, roles and login method
    apply, and the reasons in precedence order."""

    email: str
    domain: str | None = None
    claim: str | None = None
    claim_state: str | None = None
    unit_id: str | None = None
    unit_slug: str | None = None
    unit_name: str | None = None
    roles: list[str] = field(default_factory=list)
    joins: bool = False
    login_method: str = "email_code"  # "email_code" | "sso" | "refused"
    connector_id: str | None = None
    break_glass: bool = False
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "domain": self.domain,
            "claim": self.claim,
            "claim_state": self.claim_state,
            "unit_id": self.unit_id,
            "unit": self.unit_slug,
            "unit_name": self.unit_name,
            "roles": list(self.roles),
            "auto_join": self.joins,
            "login_method": self.login_method,
            "connector_id": self.connector_id,
            "break_glass": self.break_glass,
            "reasons": list(self.reasons),
        }

    def text(self) -> str:
        """A short human-readable report."""
        lines = [f"{self.email}:"]
        if self.unit_slug and self.joins:
            roles = ", ".join(self.roles)
            lines.append(f"  unit:   {self.unit_slug} ({self.unit_name}), roles {roles}")
        else:
            lines.append("  unit:   none (no automatic membership)")
        method = self.login_method
        if method == "sso":
            method = f"sso via connector {self.connector_id}"
        lines.append(f"  login:  {method}")
        lines.append("  why:")
        lines.extend(f"    - {r}" for r in self.reasons)
        return "\n".join(lines)


def _normal_email(email: Any) -> str:
    return email.strip().lower() if isinstance(email, str) else ""


def attribute_value(
    account: Account | None, attributes: Mapping[str, Any] | None, name: str
) -> str | None:
    """The profile attribute ``name`` from ``attributes``, or else the account's
    personal ``locale``, as text or None. Employer facts are not the account's (they
    are per access, and an account joining a unit has no access in its tree yet)."""
    value: Any = None
    if attributes is not None and name in attributes:
        value = attributes[name]
    elif account is not None and name == "locale":
        value = account.locale
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def explain(
    email: str,
    attributes: Mapping[str, Any] | None = None,
    account: Account | None = None,
    now: datetime | None = None,
) -> Explanation:
    """Decide, without changing anything, which unit, roles and login method apply
    to ``email`` and why, following the precedence in this module's docstring.
    ``attributes`` (or ``account``) supply the profile values for sub-unit rules.
    The claims, rules and connectors come from :func:`idp.domains.lookup.match`:
    a change made on another node counts here within 2 seconds."""
    address = _normal_email(email)
    out = Explanation(email=address)
    name = domains.email_domain(address)
    if name is None:
        out.reasons.append("not an e-mail address with a valid domain: no domain rule applies")
        return out
    out.domain = name
    if domains.is_consumer(name):
        out.reasons.append(f"{name} is a consumer mail domain: never joins a company")
        return out
    found = domain_lookup.match(name, now)
    if found.effective is None:
        if found.nearest is None:
            out.reasons.append(f"no unit claims {name}: e-mail code, no company")
        else:
            near = found.nearest
            state = near.state + (f" ({near.failure_reason})" if near.failure_reason else "")
            if near.state == "verified":
                state = "verified, but not re-checked within IDP_DOMAIN_VALIDITY_DAYS"
            out.claim = near.display_name
            out.claim_state = near.state
            out.reasons.append(
                f"claim {out.claim} is {state}: only verified domains join or route to SSO"
            )
        return out
    domain = found.effective
    out.claim = domain.display_name
    out.claim_state = domain.state
    unit = domain.unit
    out.unit_id, out.unit_slug, out.unit_name = unit.id, unit.slug, unit.name
    how = "by hand" if domain.verified_method == "manual" else "by DNS"
    cover = "covers" if domain.name == name else "covers subdomain"
    out.reasons.append(f"claim {out.claim} of unit {unit.slug} ({how}) {cover} {name}")
    rule = domain.rule
    if rule is None:
        out.reasons.append("no rules set for this domain: e-mail code, no automatic membership")
        return out
    if rule.require_sso:
        if address in rule.break_glass:
            out.break_glass = True
            out.reasons.append("require_sso is on, but this is a break-glass address: e-mail code")
        else:
            connector = rule.sso
            if connector is None:
                out.login_method = "refused"
                out.reasons.append(
                    "require_sso is on but no enabled connector is available: sign-in refused"
                )
            else:
                out.login_method = "sso"
                out.connector_id = connector.id
                out.reasons.append(
                    f"require_sso is on: sign in with connector {connector.name!r} "
                    f"({connector.kind}); e-mail codes are refused"
                )
    if not rule.auto_join:
        out.reasons.append("auto_join is off: no automatic membership")
        return out
    if out.login_method != "email_code":
        out.reasons.append("auto_join applies to e-mail code sign-ins only; this domain uses SSO")
        return out
    target = unit
    if rule.subunit_attribute:
        value = attribute_value(account, attributes, rule.subunit_attribute)
        sub = rule.subunit(value) if value is not None else None
        if sub is not None:
            target = sub
            out.reasons.append(
                f"{rule.subunit_attribute} = {value!r} assigns the sub-unit {sub.slug}"
            )
        elif value is None:
            out.reasons.append(f"{rule.subunit_attribute} is not known: the domain's unit")
        else:
            out.reasons.append(
                f"{rule.subunit_attribute} = {value!r} is not mapped: the domain's unit"
            )
    out.unit_id, out.unit_slug, out.unit_name = target.id, target.slug, target.name
    out.roles = [rule.default_role]
    out.joins = True
    out.reasons.append(f"auto_join is on: joins {target.slug} as {rule.default_role}")
    return out


def membership_for_email(
    email: str, attributes: Mapping[str, Any] | None = None
) -> tuple[str, list[str]] | None:
    """``(unit_id, roles)`` an e-mail code sign-in with ``email`` joins, or None.
    Only claims in force with ``auto_join`` give one (see :func:`explain`)."""
    result = explain(email, attributes)
    return (result.unit_id, result.roles) if result.joins and result.unit_id else None


def login_method_for_email(email: str) -> LoginMethod:
    """Home-realm discovery for the typed address (or ``login_hint``):
    ``"email_code"``, ``("sso", connector_id)`` for a ``require_sso`` domain, or
    ``"refused"`` when the domain requires SSO and no connector is usable (never
    fall back to an e-mail code then)."""
    result = explain(email)
    if result.login_method == "sso" and result.connector_id:
        return ("sso", result.connector_id)
    if result.login_method == "refused":
        return "refused"
    return "email_code"


def apply_auto_join(
    account: Account,
    actor: audit.Actor | str = "login",
    facts: dict[str, Any] | None = None,
) -> Access | None:
    """Create the membership an e-mail code sign-in of ``account`` earns, and return
    it (or the existing one). Returns None, changing nothing, when the address is
    not verified (``email_verified`` false: e.g. just changed and not yet proven),
    when no rule joins it, or when the account already belongs to the target unit
    or any unit of the domain's company tree. Safe under concurrent sign-ins: one
    membership, never a duplicate. ``facts``: the employer facts of the first wallet
    form, kept on the new access (``idp.accounts.accesses.join``)."""
    if account.email is None or not account.email_verified or not account.can_sign_in:
        return None
    attributes = None
    if facts:
        attributes = {**(facts.get("extra") or {}),
                      **{n: facts.get(n) for n in ACCOUNT_ATTRIBUTES if facts.get(n)}}
    result = explain(account.email, attributes, account=account)
    if not result.joins or result.unit_id is None:
        return None
    claim = domain_lookup.match(result.domain or "").effective
    tree = {result.unit_id}
    if claim is not None:
        tree |= claim.tree
    existing = accesses_repo.in_units(account.id, tree)
    if existing:
        return next((m for m in existing if m.unit_id == result.unit_id), existing[0])
    return accesses.join(
        account.id, result.unit_id, result.roles, actor, "membership.auto_join",
        {"unit": result.unit_slug, "roles": result.roles, "claim": result.claim}, facts,
    )


_UNSET: Any = object()


def _resolve_connector(domain: Domain, ref: str | None) -> Connector:
    chain = [domain.unit, *units.ancestors(domain.unit)]
    if ref:
        row = domains_repo.connector(ref)
        if row is None or row.unit_id not in {u.id for u in chain}:
            raise domains.DomainError(
                "unknown_connector", f"no connector {ref!r} of unit {domain.unit.slug}"
            )
        return row
    for unit in chain:
        found = domains_repo.enabled_connectors(unit.id)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise domains.DomainError(
                "connector_ambiguous",
                f"unit {unit.slug} has several connectors; choose one with --connector",
            )
    raise domains.DomainError(
        "no_connector",
        f"require_sso needs an SSO connector of unit {domain.unit.slug}: add one first "
        "(idp connectors add)",
    )


def covers(domain: Domain, email: str) -> bool:
    """True when ``email``'s domain is the claim's name or, for a wildcard claim, a
    subdomain of it."""
    name = domains.email_domain(email)
    if name is None:
        return False
    return name == domain.name or (domain.include_subdomains and name.endswith("." + domain.name))


def _subunit_ids(domain: Domain, mapping: Mapping[str, Any]) -> dict[str, str]:
    inside = units.descendant_ids(domain.unit_id)
    out: dict[str, str] = {}
    for value, ref in mapping.items():
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise domains.DomainError("invalid_rule", f"sub-unit value {value!r}: non-empty text")
        sub = units.find(ref) if isinstance(ref, str) else None
        if sub is None or sub.id not in inside:
            raise domains.DomainError(
                "invalid_rule", f"{ref!r} is not a sub-unit of {domain.unit.slug}"
            )
        out[value.strip()] = sub.id
    return out


def set_rules(
    text: str,
    auto_join: bool | None = None,
    default_role: str | None = None,
    require_sso: bool | None = None,
    connector: str | None = _UNSET,
    subunit_attribute: str | None = _UNSET,
    subunit_map: Mapping[str, str] | None = None,
    break_glass: Iterable[str] | None = None,
    add_break_glass: Iterable[str] = (),
    remove_break_glass: Iterable[str] = (),
    actor: str = "system",
) -> Domain:
    """Change the rules of the claim ``text``; only the given arguments change.
    ``break_glass`` replaces the list, ``add_``/``remove_break_glass`` edit it.
    Validates everything first (role of the unit, connector of the unit or its
    parents, sub-units inside the unit, break-glass addresses inside the claim),
    then writes rule, list and audit event in one transaction."""
    domain = domains.get(text)
    try:
        return _set_rules(
            domain,
            auto_join,
            default_role,
            require_sso,
            connector,
            subunit_attribute,
            subunit_map,
            break_glass,
            add_break_glass,
            remove_break_glass,
            actor,
        )
    except (domains.DomainError, units.UnitError):
        unit_of_work.rollback()
        raise


def _set_rules(
    domain: Domain,
    auto_join: bool | None,
    default_role: str | None,
    require_sso: bool | None,
    connector: str | None,
    subunit_attribute: str | None,
    subunit_map: Mapping[str, str] | None,
    break_glass: Iterable[str] | None,
    add_break_glass: Iterable[str],
    remove_break_glass: Iterable[str],
    actor: str,
) -> Domain:
    rule = domains_repo.rule_for(domain)
    changes: dict[str, Any] = {}
    if auto_join is not None and auto_join != rule.auto_join:
        rule.auto_join, changes["auto_join"] = auto_join, auto_join
    if default_role is not None:
        try:
            units.validate_roles(domain.unit, [default_role])
        except units.UnitError as exc:
            raise domains.DomainError("invalid_role", str(exc)) from exc
        if default_role != rule.default_role:
            rule.default_role, changes["default_role"] = default_role, default_role
    if connector is not _UNSET:
        chosen = _resolve_connector(domain, connector).id if connector else None
        if chosen != rule.sso_connector_id:
            rule.sso_connector_id, changes["sso_connector_id"] = chosen, chosen
    if require_sso is not None and require_sso != rule.require_sso:
        rule.require_sso, changes["require_sso"] = require_sso, require_sso
    if rule.require_sso and rule.sso_connector_id is None:
        rule.sso_connector_id = _resolve_connector(domain, None).id
        changes["sso_connector_id"] = rule.sso_connector_id
    if subunit_attribute is not _UNSET:
        attr = subunit_attribute or None
        if attr is not None and attr not in ACCOUNT_ATTRIBUTES:
            units.validate_field_name(attr)
        if attr != rule.subunit_attribute:
            rule.subunit_attribute, changes["subunit_attribute"] = attr, attr
    if subunit_map is not None:
        ids = _subunit_ids(domain, subunit_map)
        if ids != dict(rule.subunit_map or {}):
            rule.subunit_map, changes["subunit_map"] = ids, sorted(ids)
    current = {b.email: b for b in domain.break_glass}
    wanted = set(current) if break_glass is None else {_normal_email(e) for e in break_glass}
    wanted |= {_normal_email(e) for e in add_break_glass}
    wanted -= {_normal_email(e) for e in remove_break_glass}
    for email in wanted - set(current):
        if not covers(domain, email):
            raise domains.DomainError(
                "invalid_break_glass",
                f"{email!r} is not an address of {domains.display_name(domain)}",
            )
    if wanted != set(current):
        changes["break_glass"] = len(wanted)
    if not changes:
        return domain
    rows: list[object] = [rule]
    for email in sorted(wanted - set(current)):
        row = BreakGlassAccount(domain_id=domain.id, email=email)
        domain.break_glass.append(row)
        rows.append(row)
    for email in set(current) - wanted:
        domain.break_glass.remove(current[email])
    if domain.rule is None:
        domain.rule = rule
    if changes:
        try:
            unit_of_work.save(*rows, audit.event(
                actor, "domain.rules", domain.name, changes, domain.unit_id
            ))
        except unit_of_work.Conflict as exc:
            raise domains.DomainError("conflict", "the rules changed concurrently; retry") from exc
    return domain


def rules_of(domain: Domain | None) -> dict[str, Any]:
    """The claim's rules as plain data (unit slugs, not ids, in ``subunits``); the
    defaults for a claim without rules (or no claim)."""
    rule = domain.rule if domain is not None else None
    if rule is None:
        return {
            "auto_join": False,
            "default_role": "employee",
            "require_sso": False,
            "sso_connector_id": None,
            "subunit_attribute": None,
            "subunits": {},
            "break_glass": [],
        }
    subunits: dict[str, str] = {}
    assert domain is not None
    for value, unit_id in sorted((rule.subunit_map or {}).items()):
        sub = units_repo.by_id(unit_id)
        if sub is not None:
            subunits[value] = sub.slug
    return {
        "auto_join": rule.auto_join,
        "default_role": rule.default_role,
        "require_sso": rule.require_sso,
        "sso_connector_id": rule.sso_connector_id,
        "subunit_attribute": rule.subunit_attribute,
        "subunits": subunits,
        "break_glass": [b.email for b in domain.break_glass],
    }
