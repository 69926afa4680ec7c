"""Which account an upstream identity signs in: the federation rules.

* Upstream identities are keyed on (connector, issuer, subject); for Microsoft the
  subject is ``<tid>/<oid>``. An e-mail address never selects an account by itself.
* A known identity signs in its account; the fields and roles its source owns
  (``connectors.mapping``) are updated from the new claims. Fields are written
  through the account lifecycle (:func:`idp.accounts.lifecycle.stage_profile`) as the ``sso``
  writer: never a field SCIM or LDAP owns, and what it sets becomes ``sso``-owned.
* An unknown identity whose *verified* e-mail already belongs to an account is not
  linked silently: the caller must first have that account prove control of the
  address with an e-mail code (``idp.federation.linking``).
* Otherwise a new account is created in the connector's unit just in time, but only
  for an address the unit owns (:func:`idp.provisioning.ownership.standing` ``OWN``: a domain the
  unit or a unit above it verified, whose verification is in force), so one unit's
  IdP can never pre-create accounts for another company's addresses, nor for a
  domain whose proof of control lapsed.
* A Google ``hd`` must itself be such a domain of the unit's tree, in force.
* An upstream that does not vouch for the address (Entra without ``xms_edov``,
  ``email_verified`` false) can sign in an identity already linked, but neither
  creates nor links an account by address.
* **SCIM externalId** (the connector setting ``scim_external_id_claim``): an
  unknown identity whose verified address belongs to no account (or that has no
  verified address) is linked to the account of the SCIM record of the connector's
  own unit whose ``externalId`` equals that claim, when that account has no address
  and the unit's SCIM provisioned it (not a pending or joined record); then it signs
  in. A deactivated or blocked account is refused; two records with the value, an
  account already linked through this connector, or an account holding more than the
  ``employee`` role's permissions (whoever controls the upstream could otherwise
  become a main user) fall back to the rules above.
  Precedence: an existing link, then an account holding the verified address (proof
  by code), then the externalId match, then just-in-time creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors import UpstreamIdentity
from connectors.mapping import MappedProfile, apply, from_settings
from idp import audit
from idp.accounts import lifecycle as accounts
from idp.provisioning import ownership
from idp.rights import holds_more_than_employee
from idp.store import upstream_identities_repo as repo
from idp.store.models import Account, Connector, ScimUser
from idp.store.upstream_identities_repo import IdentityConflict, UpstreamKey


@dataclass(frozen=True)
class Outcome:
    """Exactly one of: an account to sign in, an account to link after proof, a refusal."""

    account: Account | None = None
    link_to: Account | None = None
    refused: str | None = None


def _profile(row: Connector, identity: UpstreamIdentity) -> accounts.UpstreamProfile:
    mapped: MappedProfile = apply(from_settings(row.settings), identity.claims)
    return accounts.UpstreamProfile(
        mapped.fields, mapped.roles, mapped.owned_roles, _stored_claims(identity)
    )


def _stored_claims(identity: UpstreamIdentity) -> dict[str, object]:
    keep = ("iss", "sub", "tid", "oid", "hd", "email", "name", "groups", "amr")
    return {k: identity.claims[k] for k in keep if k in identity.claims}


def resolve(row: Connector, identity: UpstreamIdentity) -> Outcome:
    """Apply the federation rules above to a validated upstream identity."""
    own = ownership.Standing.OWN
    if identity.hosted_domain and (
        ownership.domain_standing(row.unit_id, identity.hosted_domain) is not own
    ):
        return Outcome(refused="hosted_domain_not_verified")
    key = UpstreamKey(row.id, identity.issuer, identity.subject)
    profile = _profile(row, identity)
    for _attempt in range(2):
        known = repo.find(key)
        if known is not None:
            acct = accounts.upstream_sign_in(
                known, row.unit_id, identity.email, profile, audit.Actor.sso(row.id)
            )
            return Outcome(account=acct)
        verified = bool(identity.email and identity.email_verified)
        if identity.email and verified:
            existing = repo.account_by_email(identity.email)
            if existing is not None:
                return Outcome(link_to=existing)
        record = by_external_id(row, identity)
        if record is not None:
            if not record.account.can_sign_in:
                return Outcome(refused="account_cannot_sign_in")
            try:
                acct = accounts.link_upstream(
                    key, record.account_id, row.unit_id, identity.email if verified else None,
                    profile, audit.Actor.sso(row.id), proof="scim_external_id",
                )
            except IdentityConflict:
                continue  # linked in parallel, or the account got an address: look again
            return Outcome(account=acct)
        if not identity.email or not verified:
            return Outcome(refused="unverified_email")
        if ownership.standing(row.unit_id, identity.email) is not own:
            return Outcome(refused="email_domain_not_verified")
        try:
            acct = accounts.create_from_upstream(
                key, row.unit_id, identity.email, profile, audit.Actor.sso(row.id)
            )
        except IdentityConflict:
            continue  # a parallel sign-in won the race: look again
        return Outcome(account=acct)
    return Outcome(refused="conflict")


def claim_value(row: Connector, claims: dict[str, Any]) -> str | None:
    """The value of the connector's ``scim_external_id_claim`` in ``claims``: a
    non-empty string (a SAML attribute with exactly one value), else None."""
    name = (row.settings or {}).get("scim_external_id_claim")
    if not name:
        return None
    value = claims.get(name)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    return value


def email_less_record(record: ScimUser | None, unit_id: str) -> bool:
    """True for a SCIM record of exactly ``unit_id`` whose account the unit's SCIM
    provisioned without an address (not a pending record's placeholder, not a
    holder's own account that joined a record): the only accounts a connector's
    claim or a unit administrator may link an upstream identity to."""
    return (
        record is not None
        and record.unit_id == unit_id
        and record.pending_email is None
        and record.joined_at is None
        and record.account is not None
        and record.account.email is None
    )


def by_external_id(row: Connector, identity: UpstreamIdentity) -> ScimUser | None:
    """The one email-less SCIM record of the connector's own unit whose externalId
    equals the connector's claim, and that has no identity of this connector yet;
    None otherwise (no claim configured, no value, no record, two records)."""
    value = claim_value(row, identity.claims)
    if value is None:
        return None
    records = repo.scim_records_by_external_id(row.unit_id, value)
    if len(records) != 1 or not email_less_record(records[0], row.unit_id):
        return None
    if repo.of_connector(row.id, records[0].account_id):
        return None  # an identity of this connector already signs it in: never a second
    if holds_more_than_employee(records[0].account_id):
        return None  # administrators are linked only by an administrator holding as much
    return records[0]


def link(row: Connector, identity: UpstreamIdentity, account_id: str) -> Account:
    """Link ``identity`` to the account that just proved control of its e-mail."""
    profile = _profile(row, identity)
    key = UpstreamKey(row.id, identity.issuer, identity.subject)
    known = repo.find(key)
    if known is not None:
        if known.account_id != account_id:
            raise IdentityConflict("identity already linked to another account")
        return accounts.upstream_sign_in(
            known, row.unit_id, identity.email, profile, audit.Actor.sso(row.id)
        )
    return accounts.link_upstream(
        key, account_id, row.unit_id, identity.email, profile, audit.Actor.sso(row.id)
    )
