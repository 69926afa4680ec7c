"""The console's domains page (``/admin/units/<unit>/domains``, ``domains.manage``):
the unit's claimed e-mail domains, the exact DNS TXT record each must publish, a
"check now" button, the sign-in rules (auto-join, require SSO) and removal.

Every action goes through :mod:`idp.domains.registry` and :mod:`idp.domains.rules`
(audited there); a claim of another unit is a 404 here, as if it did not exist."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.console import messages, nav
from idp.console.accesses import clean
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.domains import registry, rules
from idp.domains.registry import DomainError
from idp.rights import NotPermitted, require_grant
from idp.store.models import Domain

PERMISSION = "domains.manage"
MAX_DOMAIN = 260

nav.register("domains", _l("Domains"), "console.domains", PERMISSION, order=40)


def domain_error(exc: DomainError) -> str:
    """A refusal of the domain services in the reader's language."""
    known = {
        "invalid_domain": _("Enter a domain name such as example.com."),
        "consumer_domain": _("A public mail provider's domain cannot belong to a company."),
        "reserved_domain": _("This name is reserved and cannot belong to a company."),
        "domain_taken": _("Another company has claimed this domain (or a domain around it)."),
        "no_connector": _("Requiring SSO needs a company sign-in (SSO connector): add one first."),
        "connector_ambiguous": _("The unit has several SSO connectors: choose one."),
        "unknown_connector": _("Choose one of the unit's SSO connectors."),
        "invalid_role": _("Choose one of the unit's roles."),
        "conflict": _("Someone changed this at the same time; try again."),
    }
    return known.get(exc.code, _("The domain could not be saved (%(code)s).", code=exc.code))


def _claim_of(page: UnitPage, name: str) -> Domain:
    """The unit's own claim ``name``; 404 for anything else."""
    if not name or len(name) > MAX_DOMAIN:
        abort(404)
    try:
        row = registry.get(name)
    except DomainError:
        abort(404)
    if row.unit_id != page.unit.id:
        abort(404)
    return row


def _describe(row: Domain) -> dict[str, Any]:
    data = registry.describe(row)
    data.update(
        id=row.id,
        rules=rules.rules_of(row),
        deadline=row.deadline_at,
        last_checked=row.last_checked_at,
    )
    return data


@bp.get("/units/<unit>/domains")
@unit_page(PERMISSION)
def domains(page: UnitPage) -> Response:
    """The unit's claims with their records, state and rules, and the claim form."""
    from idp.store import connectors_repo

    rows = [_describe(r) for r in registry.list_claims(page.unit.id)]
    connectors = connectors_repo.list_all(page.unit.id)
    return page.render(
        "console/domains.html",
        current="domains",
        domains=rows,
        connectors=connectors,
        roles=_roles(page),
    )


def _roles(page: UnitPage) -> list[str]:
    from idp.units import registry as units

    return list(units.roles_for(page.unit))


@bp.post("/units/<unit>/domains")
@unit_page(PERMISSION)
def add_domain(page: UnitPage) -> Response:
    """Claim a domain (``domain``; ``*.name`` for every subdomain)."""
    text = clean(request.form.get("domain"), MAX_DOMAIN)
    if not text:
        page.remember(errors={"domain": _("Enter the domain to add.")}, values={"domain": text})
        return page.see_other("console.domains")
    try:
        row = registry.claim(page.unit.id, text, actor=page.actor.audit_name())
    except DomainError as exc:
        page.remember(errors={"domain": domain_error(exc)}, values={"domain": text})
        return page.see_other("console.domains")
    page.remember(
        notice=_(
            "%(domain)s was added. Create the DNS record shown below, then check it.",
            domain=registry.display_name(row),
        )
    )
    return page.see_other("console.domains", anchor=f"domain-{row.id}")


@bp.post("/units/<unit>/domains/<domain>/check")
@unit_page(PERMISSION)
def check_domain(page: UnitPage, domain: str) -> Response:
    """Look the domain's TXT record up now and show the outcome."""
    row = _claim_of(page, domain)
    report = registry.check_one(row, actor=page.actor.audit_name())
    if report.state == "verified":
        notice = _("%(domain)s is verified.", domain=report.domain)
    elif report.outcome == "unreachable":
        notice = _("The DNS could not be asked just now; nothing changed. Try again later.")
    elif report.outcome == "mismatch":
        notice = _(
            "%(domain)s has a TXT record, but not with the value shown. Check the "
            "value and try again.",
            domain=report.domain,
        )
    else:
        notice = _(
            "The record of %(domain)s was not found yet. DNS changes can take a while to arrive.",
            domain=report.domain,
        )
    page.remember(notice=notice)
    return page.see_other("console.domains", anchor=f"domain-{row.id}")


@bp.post("/units/<unit>/domains/<domain>/rules")
@unit_page(PERMISSION)
def domain_rules(page: UnitPage, domain: str) -> Response:
    """Change the claim's rules: auto-join (with its role) and require SSO (with the
    connector; break-glass addresses keep their e-mail code)."""
    row = _claim_of(page, domain)
    form = request.form
    connector = clean(form.get("connector"), 64) or None
    require_sso = form.get("require_sso") == "1"
    auto_join = form.get("auto_join") == "1"
    default_role = clean(form.get("default_role"), 64) or None
    before = rules.rules_of(row)
    role = default_role or before["default_role"]
    if auto_join and (not before["auto_join"] or role != before["default_role"]):
        try:  # whoever signs up with the domain gets the role: no more than one holds
            require_grant(page.actor, page.unit.id, [role])
        except NotPermitted:
            page.remember(errors={f"rules-{row.id}": messages.text("forbidden")})
            return page.see_other("console.domains", anchor=f"domain-{row.id}")
    try:
        rules.set_rules(
            row.name,
            auto_join=auto_join,
            default_role=default_role,
            require_sso=require_sso,
            connector=connector if require_sso else None,
            actor=page.actor.audit_name(),
        )
    except DomainError as exc:
        page.remember(errors={f"rules-{row.id}": domain_error(exc)})
        return page.see_other("console.domains", anchor=f"domain-{row.id}")
    page.remember(
        notice=_("The rules of %(domain)s were saved.", domain=registry.display_name(row))
    )
    return page.see_other("console.domains", anchor=f"domain-{row.id}")


@bp.post("/units/<unit>/domains/<domain>/remove")
@unit_page(PERMISSION)
def remove_domain(page: UnitPage, domain: str) -> Response:
    """Drop the claim and its rules (memberships stay); needs the confirmation box."""
    row = _claim_of(page, domain)
    name = registry.display_name(row)
    if request.form.get("confirm") != "yes":
        page.remember(errors={f"confirm-{row.id}": _("Tick the box to confirm the removal.")})
        return page.see_other("console.domains", anchor=f"domain-{row.id}")
    registry.remove(row.name, actor=page.actor.audit_name())
    page.remember(notice=_("%(domain)s was removed.", domain=name))
    return page.see_other("console.domains")
