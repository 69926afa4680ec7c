"""Passkeys: WebAuthn Level 3 discoverable credentials (py_webauthn does the
ceremony checks: challenge, origin, RP ID hash, flags, signature).

* The Relying Party is the issuer: RP ID = the host of ``IDP_ISSUER``, the only
  accepted origin = its scheme, host and port.
* A passkey is registered on the dashboard by a signed-in employee (resident key
  required, user verification preferred, no attestation). ``user.id`` is a random
  32-byte handle per account (``passkey_handles``), never the account id or address.
* A sign-in with a passkey replaces the e-mail code (conditional UI or a button on the
  e-mail page, no ``allowCredentials``); a passkey *with user verification* is also
  the second factor where TOTP is owed (``allowCredentials`` = the account's passkeys,
  user verification required).
* Challenges live in the ephemeral store for :data:`CHALLENGE_SECONDS`, keyed by the
  login interaction or the dashboard session they were made for, and are taken (single
  use) before any check.
* ``amr`` (RFC 8176): ``hwk`` for a passkey that cannot be synced (not backup
  eligible), ``swk`` for one that can; plus ``user`` and ``mfa`` when the
  authenticator verified the user (possession plus PIN or biometrics: two factors,
  so it reaches :data:`idp.factors.acr.ACR_MFA`; Unitgate has no separate
  phishing-resistant level).
* Signature counters: a non-zero counter that does not grow means a cloned
  authenticator; the sign-in is refused and audited ``passkey.counter_regressed``.
  The backup state (BS) is recorded at every use.
* A unit with ``fresh_code_every_sign_in`` accepts a passkey sign-in of its members
  only with ``passkey_counts_as_fresh`` and user verification.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp import audit
from idp.services import ephemeral, services
from idp.store import passkey_repo
from idp.store.models import Account, PasskeyCredential, Unit, new_id, utcnow
from idp.store.unit_of_work import Conflict, atomic

CHALLENGE_SECONDS = 5 * 60
TIMEOUT_MS = 120_000
MAX_NAME = 64
MAX_CREDENTIAL_JSON = 16_000
RP_NAME = "Unitgate"
MAX_PER_ACCOUNT = passkey_repo.MAX_PER_ACCOUNT


class Purpose(enum.StrEnum):
    REGISTER = "reg"
    SIGN_IN = "signin"  # first factor, discoverable
    SECOND = "second"  # second factor for a known account, UV required


class Refused(enum.StrEnum):
    """Why a ceremony failed (keys of the pages' messages)."""

    EXPIRED = "passkey_expired"  # no (more) challenge: start again
    FAILED = "passkey_failed"  # the response did not verify
    UNKNOWN = "passkey_unknown"  # no such passkey (removed?)
    CLONED = "passkey_counter"  # the signature counter went backwards
    LIMIT = "passkey_limit"
    DUPLICATE = "passkey_duplicate"
    FRESH_CODE = "passkey_fresh_code"  # a unit asks for an e-mail code at every sign-in


@dataclass
class Verified:
    """A passkey assertion that passed: whose it is and the methods it adds."""

    account_id: str
    passkey_id: str
    amr: list[str]
    user_verified: bool


def rp_id() -> str:
    """The RP ID: the host of ``IDP_ISSUER``."""
    return urlsplit(services().settings.issuer).hostname or "localhost"


def origin() -> str:
    """The one accepted origin: scheme, host and port of ``IDP_ISSUER``."""
    parts = urlsplit(services().settings.issuer)
    host = parts.hostname or "localhost"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def amr_for(backup_eligible: bool, user_verified: bool) -> list[str]:
    """RFC 8176 methods of a passkey use: ``swk``/``hwk`` and, with user verification,
    ``user`` and ``mfa``."""
    methods = ["swk" if backup_eligible else "hwk"]
    if user_verified:
        methods += ["user", "mfa"]
    return methods


def _key(purpose: Purpose, binding: str) -> str:
    return f"passkey:{purpose.value}:{binding}"


def _handle(account_id: str) -> str:
    handle = passkey_repo.handle_of(account_id)
    if handle is not None:
        return handle
    try:
        with atomic():
            passkey_repo.stage_handle(account_id, bytes_to_base64url(secrets.token_bytes(32)))
    except Conflict:
        pass  # a parallel request made it
    handle = passkey_repo.handle_of(account_id)
    assert handle is not None
    return handle


def listed(account_id: str) -> list[PasskeyCredential]:
    """The account's passkeys for the dashboard, oldest first."""
    return passkey_repo.for_account(account_id)


def has_any(account_id: str) -> bool:
    return bool(passkey_repo.for_account(account_id))


def registration_options(account: Account, binding: str) -> str:
    """The ``PublicKeyCredentialCreationOptions`` (JSON) for a new passkey of
    ``account``, its challenge stored for the dashboard session ``binding``."""
    existing = passkey_repo.for_account(account.id)
    label = str(getattr(account, "email", None) or account.id)
    display = " ".join(p for p in (account.given_name, account.family_name) if p) or label
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=RP_NAME,
        user_id=base64url_to_bytes(_handle(account.id)),
        user_name=label,
        user_display_name=display,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(r.credential_id))
            for r in existing
        ],
    )
    ephemeral().put(
        _key(Purpose.REGISTER, binding),
        {"challenge": bytes_to_base64url(options.challenge), "account_id": account.id},
        CHALLENGE_SECONDS,
    )
    return options_to_json(options)


def clean_name(name: str) -> str:
    """A passkey's name: printable, single-line, at most :data:`MAX_NAME` characters."""
    text = " ".join("".join(c for c in name if c.isprintable()).split())
    return text[:MAX_NAME]


def register(account_id: str, binding: str, credential_json: str, name: str) -> Refused | None:
    """Verify the new credential against the challenge of ``binding`` (taken: single
    use) and store it (audited ``passkey.registered``); None on success."""
    state = ephemeral().take(_key(Purpose.REGISTER, binding))
    if not isinstance(state, dict) or state.get("account_id") != account_id:
        return Refused.EXPIRED
    if len(passkey_repo.for_account(account_id)) >= MAX_PER_ACCOUNT:
        return Refused.LIMIT
    try:
        verified = verify_registration_response(
            credential=credential_json[:MAX_CREDENTIAL_JSON],
            expected_challenge=base64url_to_bytes(str(state["challenge"])),
            expected_rp_id=rp_id(),
            expected_origin=origin(),
        )
    except Exception:
        return Refused.FAILED
    eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    row = PasskeyCredential(
        id=new_id(),
        account_id=account_id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        name=clean_name(name) or "Passkey",
        aaguid=verified.aaguid,
        backup_eligible=eligible,
        backup_state=verified.credential_backed_up,
    )
    event = audit.event(
        audit.account_actor(account_id), "passkey.registered", account_id,
        {"passkey_id": row.id, "name": row.name, "backup_eligible": eligible,
         "backup_state": row.backup_state, "user_verified": verified.user_verified},
    )
    try:
        with atomic():
            passkey_repo.stage_new(row, event)
    except Conflict:
        return Refused.DUPLICATE
    return None


def authentication_options(purpose: Purpose, binding: str, account_id: str | None = None) -> str:
    """The ``PublicKeyCredentialRequestOptions`` (JSON) for a sign-in (no
    ``allowCredentials``: discoverable) or, with ``account_id``, for the second factor
    (the account's passkeys, user verification required); the challenge is stored
    for the interaction ``binding``."""
    allow = []
    if account_id is not None:
        allow = [
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(r.credential_id))
            for r in passkey_repo.for_account(account_id)
        ]
    options = generate_authentication_options(
        rp_id=rp_id(),
        timeout=TIMEOUT_MS,
        allow_credentials=allow,
        user_verification=(
            UserVerificationRequirement.REQUIRED if account_id is not None
            else UserVerificationRequirement.PREFERRED
        ),
    )
    ephemeral().put(
        _key(purpose, binding),
        {"challenge": bytes_to_base64url(options.challenge), "account_id": account_id},
        CHALLENGE_SECONDS,
    )
    return options_to_json(options)


def verify(purpose: Purpose, binding: str, credential_json: str) -> Verified | Refused:
    """Check an assertion against the challenge of ``binding`` (taken first: single
    use), the stored public key, the user handle and the counter; record the use
    (counter, backup state, last used; audited ``account.signed_in`` with method
    ``passkey`` for a first factor, ``passkey.used`` for a second)."""
    state = ephemeral().take(_key(purpose, binding))
    if not isinstance(state, dict):
        return Refused.EXPIRED
    expected_account = state.get("account_id")
    try:
        parsed = parse_authentication_credential_json(credential_json[:MAX_CREDENTIAL_JSON])
    except Exception:
        return Refused.FAILED
    row = passkey_repo.by_credential_id(parsed.id)
    if row is None:
        return Refused.UNKNOWN
    if expected_account is not None and row.account_id != expected_account:
        return Refused.FAILED
    handle = parsed.response.user_handle
    if handle is not None and bytes_to_base64url(handle) != passkey_repo.handle_of(row.account_id):
        return Refused.FAILED
    if handle is None and purpose is Purpose.SIGN_IN:
        return Refused.FAILED  # a discoverable credential always returns its user handle
    try:
        result = verify_authentication_response(
            credential=parsed,
            expected_challenge=base64url_to_bytes(str(state["challenge"])),
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            credential_public_key=base64url_to_bytes(row.public_key),
            credential_current_sign_count=0,  # compared below, to audit a regression
            require_user_verification=purpose is Purpose.SECOND,
        )
    except Exception:
        return Refused.FAILED
    actor = audit.account_actor(row.account_id)
    if (result.new_sign_count or row.sign_count) and result.new_sign_count <= row.sign_count:
        with atomic():
            passkey_repo.stage_audit(audit.event(
                actor, "passkey.counter_regressed", row.account_id,
                {"passkey_id": row.id, "stored": row.sign_count,
                 "received": result.new_sign_count},
            ))
        return Refused.CLONED
    if purpose is Purpose.SIGN_IN and passkey_repo.fresh_units_refusing_passkeys(row.account_id):
        return Refused.FRESH_CODE
    if purpose is Purpose.SIGN_IN and not result.user_verified and _fresh_policy(row.account_id):
        return Refused.FRESH_CODE
    amr = amr_for(row.backup_eligible, result.user_verified)
    details: dict[str, Any] = {"method": "passkey", "passkey_id": row.id, "amr": amr}
    action = "account.signed_in" if purpose is Purpose.SIGN_IN else "passkey.used"
    with atomic():
        won = passkey_repo.stage_use(
            row, row.sign_count, result.new_sign_count, result.credential_backed_up,
            utcnow(), audit.event(actor, action, row.account_id, details),
        )
    if not won:
        return Refused.FAILED  # a parallel use of the same assertion's counter won
    return Verified(row.account_id, row.id, amr, result.user_verified)


def _fresh_policy(account_id: str) -> bool:
    from idp.factors import fresh_code

    return fresh_code.required(account_id)


def rename(account_id: str, passkey_id: str, name: str) -> bool:
    """Rename the account's passkey; False when it has none such or the name is empty."""
    cleaned = clean_name(name)
    if not cleaned:
        return False
    with atomic():
        return passkey_repo.stage_rename(account_id, passkey_id, cleaned)


def remove(account_id: str, passkey_id: str) -> bool:
    """Remove the account's passkey (audited ``passkey.removed``); False when none such."""
    with atomic():
        return passkey_repo.stage_remove(
            account_id, passkey_id,
            audit.event(audit.account_actor(account_id), "passkey.removed", account_id,
                        {"passkey_id": passkey_id}),
        )


def set_unit_policy(ref: str, value: bool, actor: str) -> dict[str, Any]:
    """Set unit ``ref``'s (id or slug) ``passkey_counts_as_fresh`` (audited
    ``unit.policy``); returns ``{"unit": slug, "passkey_counts_as_fresh": bool}``.
    Raises :class:`idp.units.registry.UnitError` ``not_found``."""
    from idp.units import registry as units

    unit: Unit = units.get(ref)
    if bool(unit.passkey_counts_as_fresh) != value:
        with atomic():
            passkey_repo.set_unit_policy(
                unit, value,
                audit.event(actor, "unit.policy", unit.slug,
                            {"passkey_counts_as_fresh": value}, unit.id),
            )
    return {"unit": unit.slug, "passkey_counts_as_fresh": bool(unit.passkey_counts_as_fresh)}
