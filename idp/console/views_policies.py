"""The console's sign-in policies of a unit (``/admin/units/<unit>/policies``,
``units.manage``): require TOTP, a fresh code at every sign-in (and whether a
passkey counts as one), passwords allowed, e-mail on impersonation; and, per verified
domain, whether it requires SSO (a domain rule, changed on the domains page with
``domains.manage``).

Each switch is set through its own service (:mod:`idp.factors.totp`,
:mod:`idp.factors.fresh_code`, :mod:`idp.factors.passkeys`,
:mod:`idp.factors.passwords`, :mod:`idp.interaction.impersonation`), which writes only
a change and audits it as ``unit.policy``, as ``idp units policy`` does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.console import nav
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.domains import registry as domains
from idp.domains import rules

PERMISSION = "units.manage"

nav.register("policies", _l("Sign-in policies"), "console.policies", PERMISSION, order=45)


def _setters() -> dict[str, Callable[[str, bool, str], Any]]:
    from idp.factors import fresh_code, passkeys, passwords, totp
    from idp.interaction import impersonation

    return {
        "require_totp": totp.set_unit_policy,
        "fresh_code_every_sign_in": fresh_code.set_unit_policy,
        "passkey_counts_as_fresh": passkeys.set_unit_policy,
        "passwords_allowed": passwords.set_unit_policy,
        "notify_impersonation": impersonation.set_notify_policy,
    }


@bp.get("/units/<unit>/policies")
@unit_page(PERMISSION)
def policies(page: UnitPage) -> Response:
    """The unit's switches and its domains' SSO requirement."""
    u = page.unit
    current = {name: bool(getattr(u, name)) for name in _setters()}
    claims = [
        {
            "domain": domains.display_name(d),
            "in_force": domains.is_effective(d),
            "require_sso": rules.rules_of(d)["require_sso"],
        }
        for d in domains.list_claims(u.id)
    ]
    return page.render(
        "console/policies.html",
        current="policies",
        policy=current,
        claims=claims,
        can_domains=page.can("domains.manage"),
    )


@bp.post("/units/<unit>/policies")
@unit_page(PERMISSION)
def policies_save(page: UnitPage) -> Response:
    """Set every switch to the form's value (a box not ticked is off)."""
    actor = page.actor.audit_name()
    for name, setter in _setters().items():
        setter(page.unit.id, request.form.get(name) == "1", actor)
    page.remember(notice=_("The sign-in policies were saved."))
    return page.see_other("console.policies")
