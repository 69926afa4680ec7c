"""TOTP second factor (RFC 6238) for business units that need more than e-mail codes.

An e-mail code is a possession factor below NIST SP 800-63B AAL2. A unit with
``require_totp`` makes every member that signs in with an e-mail code or an LDAP
password also give a code from an authenticator app; an employee may also turn it on
for themselves (a confirmed credential is always asked for). Sign-ins through the
company's SSO (``amr`` contains ``fed``) are exempt: the upstream IdP is responsible
for its own factors.

* The shared secret (160 bits, :func:`pyotp.random_base32`) is generated here and
  stored only sealed with the master key, its context naming the account.
* A credential counts only once confirmed with a first valid code.
* ``valid_window=1`` (one 30 s step either side, RFC 6238 §5.2) and each time step at
  most once per account (:func:`idp.store.totp_repo.claim_step`).
* At most :data:`MAX_TRIES_PER_INTERACTION` wrong codes per login interaction and
  :data:`MAX_FAILURES_PER_ACCOUNT` per account in :data:`THROTTLE_SECONDS`
  (ephemeral counters; the store down means no code is accepted: 503).
* Success adds ``otp`` and ``mfa`` to ``amr`` (RFC 8176 §2) and sets ``acr`` to
  :data:`ACR_MFA`.
"""

from __future__ import annotations

import datetime
import enum
import time
from dataclasses import dataclass
from typing import Any

import pyotp
from pyotp import utils as otp_utils

from idp import audit
from idp.crypto.sealed_fields import totp_context
from idp.factors import acr
from idp.services import ephemeral, services
from idp.store import totp_repo
from idp.store.models import Account, TotpCredential
from idp.store.unit_of_work import Conflict, atomic

ACR_MFA = acr.ACR_MFA
AMR_TOTP = ["otp", "mfa"]  # RFC 8176 §2: one-time password, multiple factors
AMR_FEDERATED = "fed"
ISSUER = "Unitgate"
DIGITS = 6
MAX_TRIES_PER_INTERACTION = 5
MAX_FAILURES_PER_ACCOUNT = 20
THROTTLE_SECONDS = 15 * 60
PENDING_SECONDS = 10 * 60


class Outcome(enum.Enum):
    OK = "ok"
    WRONG = "wrong"  # not a valid code now
    REPLAYED = "replayed"  # valid, but its time step was already used
    EXHAUSTED = "exhausted"  # too many wrong codes in this interaction
    THROTTLED = "throttled"  # too many wrong codes for this account recently
    NOT_ENROLLED = "not_enrolled"


@dataclass
class Result:
    outcome: Outcome
    tries_left: int = 0


def _context(account_id: str) -> str:
    return totp_context(account_id)


def _secret(row: TotpCredential) -> str:
    return services().sealer.open(row.secret_sealed, _context(row.account_id)).decode()


def required_by_units(account_id: str) -> list[str]:
    """Names of the account's units whose policy requires TOTP (empty: none does)."""
    return [u.name for u in totp_repo.units_requiring(account_id)]


def enrolled(account_id: str) -> bool:
    """True when the account has a confirmed TOTP credential."""
    row = totp_repo.for_account(account_id)
    return row is not None and row.confirmed_at is not None


def due(account_id: str, amr: list[str]) -> bool:
    """Whether a sign-in of ``account_id`` with methods ``amr`` still needs a TOTP
    code: not for SSO (``fed``) or when ``mfa`` is already there; otherwise when a
    unit of the account requires it or the account confirmed TOTP voluntarily."""
    if AMR_FEDERATED in amr or "mfa" in amr:
        return False
    return totp_repo.second_factor_expected(account_id)


def owed(account_id: str, amr: list[str], require_mfa: bool = False) -> bool:
    """Whether a sign-in with methods ``amr`` must still give a TOTP code: when
    :func:`due`, or when the merchant asked for :data:`idp.factors.acr.ACR_MFA`
    (``require_mfa``, step-up) and ``amr`` has no ``mfa`` yet - then also after an
    upstream SSO login and for an account without TOTP (it is set up first)."""
    if require_mfa and "mfa" not in amr:
        return True
    return due(account_id, amr)


def with_totp(amr: list[str]) -> list[str]:
    """``amr`` with ``otp`` and ``mfa`` added (order kept, no duplicates)."""
    merged = list(amr)
    for value in AMR_TOTP:
        if value not in merged:
            merged.append(value)
    return merged


def begin_enrolment(account: Account) -> str | None:
    """The base32 secret to show for setting up TOTP: the pending one if set-up already
    started, otherwise a new one stored sealed. None when the account already has a
    confirmed credential (remove it first)."""
    row = totp_repo.for_account(account.id)
    if row is not None and row.confirmed_at is not None:
        return None
    if row is not None:
        return _secret(row)
    secret = pyotp.random_base32()
    sealed = services().sealer.seal(secret.encode(), _context(account.id))
    try:
        with atomic():
            stored: TotpCredential | None = totp_repo.start_enrolment(account.id, sealed)
    except Conflict:
        stored = None
    if stored is None:
        again = totp_repo.for_account(account.id)
        if again is None or again.confirmed_at is not None:
            return None
        return _secret(again)
    return secret


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://totp/...`` URI (Key Uri Format) authenticator apps import."""
    return pyotp.TOTP(secret, digits=DIGITS).provisioning_uri(name=email, issuer_name=ISSUER)


def _tries_key(interaction_id: str) -> str:
    return f"totp:tries:{interaction_id}"


def _failures_key(account_id: str) -> str:
    return f"totp:fail:{account_id}"


def _clean(code: str) -> str | None:
    digits = "".join(code.split())
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (RFC 6238 §4.2 ``T``) whose code is ``code`` within one step
    either side of ``now``, or None."""
    totp = pyotp.TOTP(secret, digits=DIGITS)
    if not totp.verify(code, for_time=now, valid_window=1):
        return None
    base = totp.timecode(datetime.datetime.fromtimestamp(now, tz=datetime.UTC))
    for offset in (0, -1, 1):
        if otp_utils.strings_equal(code, totp.generate_otp(base + offset)):
            return base + offset
    return None


def verify(account_id: str, interaction_id: str, code: str, confirm: bool = False) -> Result:
    """Check ``code`` for the account in the login interaction ``interaction_id``.
    ``confirm=True`` checks against the credential being set up and confirms it.
    OK at most once per time step per account (parallel submissions: one winner);
    wrong codes count against the interaction and the account."""
    tries_key = _tries_key(interaction_id)
    used = int(ephemeral().get(tries_key) or 0)
    if used >= MAX_TRIES_PER_INTERACTION:
        return Result(Outcome.EXHAUSTED)
    if int(ephemeral().get(_failures_key(account_id)) or 0) >= MAX_FAILURES_PER_ACCOUNT:
        return Result(Outcome.THROTTLED)
    row = totp_repo.for_account(account_id)
    if row is None or (row.confirmed_at is not None) == confirm:
        return Result(Outcome.NOT_ENROLLED)
    digits = _clean(code)
    step = _matching_step(_secret(row), digits, time.time()) if digits else None
    if step is None:
        return _wrong(account_id, tries_key)
    event = (
        audit.event(audit.account_actor(account_id), "account.totp_enrolled", account_id, {})
        if confirm
        else None
    )
    if not totp_repo.claim_step(account_id, step, confirm, event):
        return Result(Outcome.REPLAYED, MAX_TRIES_PER_INTERACTION - used)
    ephemeral().delete(tries_key)
    return Result(Outcome.OK)


def exhausted(interaction_id: str) -> bool:
    """True once the interaction used up its :data:`MAX_TRIES_PER_INTERACTION` tries."""
    return int(ephemeral().get(_tries_key(interaction_id)) or 0) >= MAX_TRIES_PER_INTERACTION


def _wrong(account_id: str, tries_key: str) -> Result:
    ephemeral().incr(_failures_key(account_id), THROTTLE_SECONDS)
    count = ephemeral().incr(tries_key, PENDING_SECONDS)
    left = max(0, MAX_TRIES_PER_INTERACTION - count)
    return Result(Outcome.WRONG if left else Outcome.EXHAUSTED, left)


def hold(interaction_id: str, account_id: str, amr: list[str], acr: str | None) -> None:
    """Remember that the first factor of ``interaction_id`` passed for ``account_id``
    with ``amr``/``acr``; the interaction stays unauthenticated (no session, no
    consent, no resume) until :func:`release` after the TOTP code."""
    ephemeral().put(
        f"totp:pending:{interaction_id}",
        {"account_id": account_id, "amr": list(amr), "acr": acr},
        PENDING_SECONDS,
    )


def held(interaction_id: str) -> dict[str, Any] | None:
    """The first factor held by :func:`hold` for this interaction, or None."""
    value = ephemeral().get(f"totp:pending:{interaction_id}")
    return value if isinstance(value, dict) else None


def release(interaction_id: str) -> dict[str, Any] | None:
    """Atomically take the held first factor (at most one caller gets it)."""
    value = ephemeral().take(f"totp:pending:{interaction_id}")
    return value if isinstance(value, dict) else None


def reset(account_id: str, actor: str) -> bool:
    """Remove the account's TOTP credential (audited ``account.totp_reset``) so the
    employee sets it up again at the next sign-in; False when there was none."""
    with atomic():
        return totp_repo.remove(
            account_id, audit.event(actor, "account.totp_reset", account_id, {})
        )


def remove_own(account_id: str) -> bool:
    """The employee removes their own TOTP: refused (False) while a unit of theirs
    requires it or when there is none; audited ``account.totp_removed``."""
    if totp_repo.units_requiring(account_id):
        return False
    with atomic():
        return totp_repo.remove(
            account_id,
            audit.event(audit.account_actor(account_id), "account.totp_removed", account_id, {}),
        )


def set_unit_policy(ref: str, require_totp: bool, actor: str) -> dict[str, Any]:
    """Set unit ``ref``'s (id or slug) ``require_totp`` (audited ``unit.policy``);
    returns ``{"unit": slug, "require_totp": bool}``. Raises
    :class:`idp.units.registry.UnitError` ``not_found``."""
    from idp.units import registry as units

    unit = units.get(ref)
    if bool(unit.require_totp) != require_totp:
        with atomic():
            totp_repo.set_unit_policy(
                unit, require_totp,
                audit.event(
                    actor, "unit.policy", unit.slug, {"require_totp": require_totp}, unit.id
                ),
            )
    return {"unit": unit.slug, "require_totp": bool(unit.require_totp)}

