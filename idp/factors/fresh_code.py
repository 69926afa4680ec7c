"""The unit policy ``fresh_code_every_sign_in``: a new code at every use.

A corporate wallet may promise a new one-time code at every purchase. For a unit with
the policy, every authorisation request for its members asks for a new sign-in,
whatever session exists and whatever the merchant sent:

* OIDC ``/authorize`` and SAML ``/sso`` (and IdP-initiated SSO) do not reuse a live
  session of a member: the login pages ask for a new e-mail code, as with
  ``prompt=login`` / ``ForceAuthn``. ``prompt=none`` (``IsPassive``) answers
  ``login_required`` (``NoPassive``).
* A company SSO of such a unit asks its upstream for a new sign-in: OIDC
  ``prompt=login`` with ``max_age=0`` (the ID token's ``auth_time`` must be newer
  than the request), SAML ``ForceAuthn="true"``.

"Member" means any access to the unit, as for ``require_totp``.
"""

from __future__ import annotations

from typing import Any

from idp import audit
from idp.process_cache import ProcessCache
from idp.store import sign_in_policy_repo
from idp.store.models import Unit
from idp.store.unit_of_work import atomic

# The units with the policy, per process (usually none, so the sign-in hot path asks
# the database nothing); a change counts here at its commit and on other nodes within
# the cache's 2 seconds (idp.process_cache).
POLICY_UNITS: ProcessCache[frozenset[str]] = ProcessCache("fresh_code_units", (Unit,), 1)


def required(account_id: str) -> bool:
    """True when a unit of the account's memberships has the policy: no query while
    no unit has it, else one."""
    units = POLICY_UNITS.get_or_load("units", sign_in_policy_repo.fresh_code_units)
    if not units:
        return False
    return sign_in_policy_repo.member_of_any(account_id, units)


def connector_requires(connector_id: str) -> bool:
    """True when the unit owning the connector has the policy."""
    return sign_in_policy_repo.connector_unit_requires(connector_id)


def set_unit_policy(ref: str, value: bool, actor: str) -> dict[str, Any]:
    """Set unit ``ref``'s (id or slug) ``fresh_code_every_sign_in`` (audited
    ``unit.policy``); returns ``{"unit": slug, "fresh_code_every_sign_in": bool}``.
    Raises :class:`idp.units.registry.UnitError` ``not_found``."""
    from idp.units import registry as units

    unit = units.get(ref)
    if bool(unit.fresh_code_every_sign_in) != value:
        with atomic():
            sign_in_policy_repo.set_fresh_code(
                unit, value,
                audit.event(actor, "unit.policy", unit.slug,
                            {"fresh_code_every_sign_in": value}, unit.id),
            )
    return {"unit": unit.slug, "fresh_code_every_sign_in": bool(unit.fresh_code_every_sign_in)}
