"""The optional password credential (issue 13, item 1): a unit's policy
``passwords_allowed`` lets its members sign in with a password besides e-mail codes
(which stay the default and remain available).

Guarantees, each covered by ``tests/test_passwords*.py``:

* **Who may.** An account may use a password only while it holds an access that
  grants (active, platform access, not ended, unit not blocked) in a unit whose
  policy allows passwords (:func:`allowed`); otherwise the password page refuses it
  like a wrong password, and no password is generated or mailed for it.
* **Storage.** Only an argon2id hash (argon2-cffi, PHC string) with the parameters
  ``IDP_ARGON2_TIME_COST``, ``IDP_ARGON2_MEMORY_KIB`` and ``IDP_ARGON2_PARALLELISM``;
  a hash made with other parameters is replaced at the next successful sign-in
  (``check_needs_rehash``). The password is never logged, audited, listed or
  answered by the API; only its status is: ``initial`` (generated and mailed with
  the invitation or the access details), ``reset_by_staff`` (generated again by an
  administrator and mailed), ``set_by_user``. Generated passwords travel only inside
  the sealed outbox mail to the person.
* **Sign-in** (:func:`check_login`): the attempt is counted by the e-mail codes'
  throttles (:func:`idp.factors.email_otp.throttled`, scope ``pwd``: per address and
  requester, per address for unknown requesters, per IP; a correct password clears
  its requester's count); one argon2 verification runs whatever the address (a
  dummy hash for unknown addresses and accounts without a password), so answers and
  timing do not tell which addresses exist or have passwords. A wrong password
  counts as a consecutive failure on the account like a wrong code; a soft-locked
  account (:func:`idp.factors.email_otp.soft_locked`) accepts passwords only from
  browsers known for the address, while e-mail codes (the 16-digit proof) keep
  working, so nobody can lock the real person out.
* **Changes.** A person changes their own password with the current one or after a
  fresh e-mail code (:mod:`idp.dashboard.views_password`); a chosen password passes
  :func:`idp.factors.password_policy.problem`. Every change is audited without the
  password.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from idp import audit
from idp.accounts import lifecycle as accounts
from idp.factors import email_otp, known_devices, password_policy
from idp.i18n import ui_language
from idp.interaction import rp_logout
from idp.mail import outbox
from idp.observability import metrics
from idp.process_cache import ProcessCache
from idp.services import settings
from idp.store import passwords_repo
from idp.store.models import (
    PASSWORD_INITIAL,
    PASSWORD_RESET_BY_STAFF,
    PASSWORD_SET_BY_USER,
    Account,
    Unit,
)
from idp.store.unit_of_work import atomic

AMR = ["pwd"]  # RFC 8176 §2
SCOPE = "pwd"  # the throttles' scope (idp.factors.email_otp)
STATUSES = (PASSWORD_INITIAL, PASSWORD_RESET_BY_STAFF, PASSWORD_SET_BY_USER)
MAX_INPUT = 1100  # longer input is cut and then fails like a wrong password
_DUMMY = "unitgate-no-such-password"


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                          parallelism=parallelism, type=Type.ID)


def hasher() -> PasswordHasher:
    """The argon2id hasher with the current settings (one per parameter set)."""
    s = settings()
    return _hasher_for(s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism)


@lru_cache(maxsize=4)
def _dummy_for(ph: PasswordHasher) -> str:
    return ph.hash(_DUMMY)


def _verify(hashed: str | None, password: str) -> bool:
    """One argon2 verification of ``password``: against ``hashed``, or against a
    dummy hash (the same cost) when there is none, then False."""
    ph = hasher()
    try:
        ok = ph.verify(hashed or _dummy_for(ph), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and hashed is not None


# -- policy and status ---------------------------------------------------------------

# Whether any unit allows passwords (the e-mail page links the password page then).
OFFERED: ProcessCache[bool] = ProcessCache("passwords_offered", (Unit,), 1)


def offered() -> bool:
    """True when at least one unit allows passwords."""
    return bool(OFFERED.get_or_load("any", passwords_repo.any_unit_allows))


def allowed(account_id: str) -> bool:
    """True when the account may use a password (see the module docstring)."""
    return passwords_repo.allowed_for(account_id)


def status(account_id: str) -> str | None:
    """The account's password status, None when it has no password."""
    row = passwords_repo.get(account_id)
    return row.status if row is not None else None


def set_unit_policy(ref: str, value: bool, actor: str) -> dict[str, Any]:
    """Set unit ``ref``'s (id or slug) ``passwords_allowed`` (audited ``unit.policy``);
    returns ``{"unit": slug, "passwords_allowed": bool}``. Raises
    :class:`idp.units.registry.UnitError` ``not_found``. Existing passwords stay
    stored while no unit allows them, but cannot be used."""
    from idp.units import registry as units

    unit = units.get(ref)
    if bool(unit.passwords_allowed) != value:
        with atomic():
            passwords_repo.set_unit_policy(
                unit, value,
                audit.event(actor, "unit.policy", unit.slug, {"passwords_allowed": value},
                            unit.id),
            )
    return {"unit": unit.slug, "passwords_allowed": bool(unit.passwords_allowed)}


# -- generated passwords (staged in the caller's transaction) ------------------------


def stage_generated(account: Account, status: str, who: audit.Actor,
                    unit_id: str | None) -> str:
    """Stage a new generated password for ``account`` with ``status`` (``initial`` or
    ``reset_by_staff``), audited ``password.generated`` (status only); returns the
    password, which the caller puts only into the person's outbox mail."""
    password = password_policy.generate()
    passwords_repo.stage_set(account.id, hasher().hash(password), status, who.display)
    audit.record(who, "password.generated", account.id,
                 {"status": status, "unit_id": unit_id}, unit_id=unit_id)
    return password


def generated_status(account_id: str) -> str | None:
    """The status a newly generated password gets with access details, or None when
    none is due: the person chose their own (``set_by_user``) password, which access
    details never replace (a reset by staff does)."""
    current = status(account_id)
    if current == PASSWORD_SET_BY_USER:
        return None
    return current or PASSWORD_INITIAL


def stage_reset(account: Account, unit_id: str, unit_name: str,
                who: audit.Actor) -> str | None:
    """Stage a staff reset: a new generated password with status ``reset_by_staff``
    and its mail to the person (the outbox message id); None when the account may
    not use a password (or not sign in at all). Every browser session of the
    person ends with it: a reset is what staff do when a password may be known to
    someone else. The caller authorised ``users.manage`` in ``unit_id`` and commits."""
    if not account.can_sign_in or account.email is None or not allowed(account.id):
        return None
    password = stage_generated(account, PASSWORD_RESET_BY_STAFF, who, unit_id)
    rp_logout.stage_end_sessions(account.id)
    return stage_mail(account, password, unit_name, "reset")


def stage_mail(account: Account, password: str, unit_name: str, reason: str) -> str:
    """Stage the mail that carries a generated ``password`` to the person
    (``reason``: ``reset`` or ``details``); the outbox message id. The callers
    check that the account has an address (:class:`ValueError` otherwise)."""
    if account.email is None:
        raise ValueError("the account has no e-mail address")
    lang = ui_language(account.locale)
    return outbox.enqueue_email(
        account.email, "password", lang if lang in ("en", "de") else "en",
        {"name": account.name, "unit_name": unit_name, "password": password,
         "reason": reason, "sign_in": settings().issuer.rstrip("/") + "/account"},
        commit=False,
    )


# -- sign-in -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginCheck:
    """The outcome of :func:`check_login`: ``account`` when the password signs in;
    ``throttled`` when the attempt was not even checked."""

    account: Account | None
    throttled: bool = False


def check_login(email: str, password: str, ip: str) -> LoginCheck:
    """Check ``password`` for the normalised ``email`` (see the module docstring for
    the throttles, the lock-out and the uniform cost). On success the hash is
    renewed when the parameters changed."""
    requester = email_otp.requester_for(email, ip)
    if email_otp.throttled(email, requester, SCOPE):
        metrics.count(metrics.SIGNINS, "pwd", "throttled")
        return LoginCheck(None, throttled=True)
    account = accounts.by_email(email)
    # the same lookup for an unknown address (no row has the id "-")
    row = passwords_repo.get(account.id if account is not None else "-")
    ok = _verify(row.hash if row is not None else None, password[:MAX_INPUT])
    if not ok:
        accounts.record_code_failure(account.id if account is not None else "-")
        known_devices.note_failure(email)
        metrics.count(metrics.SIGNINS, "pwd", "wrong")
        return LoginCheck(None)
    assert account is not None and row is not None
    if (
        not account.can_sign_in or not allowed(account.id)
        or (email_otp.soft_locked(account) and not requester.known)
    ):
        metrics.count(metrics.SIGNINS, "pwd", "refused")
        return LoginCheck(None)
    email_otp.forgive(email, requester, SCOPE)
    _renew_hash(account.id, password[:MAX_INPUT])
    if account.failed_code_attempts and not email_otp.soft_locked(account):
        accounts.reset_code_failures(account.id)
    return LoginCheck(account)


def _renew_hash(account_id: str, password: str) -> None:
    """Rehash with the current parameters when the stored hash used others."""
    ph = hasher()
    row = passwords_repo.get(account_id)
    if row is None or not ph.check_needs_rehash(row.hash):
        return
    with atomic():
        passwords_repo.stage_rehash(row, ph.hash(password))
        audit.record(audit.account_actor(account_id), "password.rehashed", account_id)


def needs_own(account_id: str) -> bool:
    """True when the account signs in with a generated password (``initial`` or
    ``reset_by_staff``) and is asked to choose its own."""
    return status(account_id) in (PASSWORD_INITIAL, PASSWORD_RESET_BY_STAFF)


# -- the person's own changes --------------------------------------------------------


def problem_with_new(account: Account, new: str, repeat: str) -> str | None:
    """Why ``new`` (typed twice: ``repeat``) cannot be the account's password (a
    message key), None when it can."""
    if not allowed(account.id):
        return "password_not_allowed"
    if new != repeat:
        return "password_mismatch"
    return password_policy.problem(new, account.email or "", (account.given_name or "",
                                                        account.family_name or ""))


def change_with_current(account: Account, current: str, new: str, repeat: str,
                        ip: str, keep_session: str | None = None) -> str | None:
    """Change the account's password after checking ``current`` (counted by the same
    throttles and lock-out as a sign-in); None on success, else a message key
    (``password_throttled``, ``password_wrong`` or a key of :func:`problem_with_new`).
    ``keep_session``: see :func:`set_own`."""
    refused = problem_with_new(account, new, repeat)
    if refused == "password_not_allowed":
        return refused
    if account.email is None:  # a password signs in with an address: none to use
        return "password_not_allowed"
    check = check_login(account.email, current, ip)
    if check.throttled:
        return "password_throttled"
    if check.account is None or check.account.id != account.id:
        return "password_wrong"
    if refused is not None:
        return refused
    set_own(account, new, via="password", keep_session=keep_session)
    return None


def set_own(account: Account, new: str, via: str, keep_session: str | None = None) -> None:
    """Store ``new`` as the account's own password (status ``set_by_user``), audited
    ``password.changed`` with how the person proved it was them (``via``:
    ``password`` or ``email_code``). Every other browser session of the account ends
    in the same transaction (whoever knew the old password is signed out); the one
    whose hash is ``keep_session`` (the browser making the change) stays. The caller
    checked :func:`problem_with_new`."""
    with atomic():
        passwords_repo.stage_set(account.id, hasher().hash(new), PASSWORD_SET_BY_USER,
                                 f"account:{account.id}")
        ended = rp_logout.stage_end_sessions(account.id, keep=keep_session)
        audit.record(audit.account_actor(account.id), "password.changed", account.id,
                     {"status": PASSWORD_SET_BY_USER, "via": via,
                      "sessions_ended": ended})
