"""LDAP bind as a login method for a unit (``idp ldap add ... --login``).

An employee whose account came from a login-enabled directory may prove who they
are with their directory password: Unitgate binds to the directory *as the user's
own DN* (recorded by the last sync, never built from what the user typed, so there
is nothing to inject) and, on success, finishes the interaction with
``amr=["pwd"]`` (RFC 8176 section 2).

Rules:

* only accounts that may sign in (active, not locked) and whose directory entry
  was present and enabled at the last sync;
* an empty password is refused before any network traffic (RFC 4513 section 5.1.2:
  a DN with an empty password is an *unauthenticated* bind that servers accept);
* at most :data:`MAX_FAILURES` wrong passwords per account per
  :data:`FAILURE_WINDOW_SECONDS`; beyond that the directory is not even asked
  (so Unitgate cannot be used to lock the AD account out, and guessing stays slow);
* an unreachable directory raises :class:`LdapLoginUnavailable`: fail closed.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.ldap import LdapError, check_password
from idp import audit
from idp.ldap.directories import connection_config
from idp.observability import metrics
from idp.services import ephemeral
from idp.store import ldap_repo
from idp.store.models import Account
from idp.store.unit_of_work import atomic

log = logging.getLogger("idp.login.ldap_bind")

MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 15 * 60
AMR = ["pwd"]


class LdapLoginUnavailable(RuntimeError):
    """The directory cannot be reached; the login must fail closed (503)."""


def _failures_key(account_id: str) -> str:
    return f"ldap-login-failures:{account_id}"


def available_for(account: Account) -> bool:
    """True when ``account`` may sign in with its directory password."""
    if not account.can_sign_in:
        return False
    found = ldap_repo.login_directory_for(account.id)
    return found is not None and found[1].state == "active"


def throttled(account: Account) -> bool:
    """True when the account has used up its wrong-password allowance for now."""
    count = ephemeral().get(_failures_key(account.id))
    return isinstance(count, int) and count >= MAX_FAILURES


def verify_password(account: Account, password: str) -> bool:
    """True only when ``password`` is the directory password of ``account``.

    False for accounts that cannot use LDAP login (see :func:`available_for`), for
    an empty password, when throttled, or for a wrong password (which counts as a
    failure). Raises :class:`LdapLoginUnavailable` when the directory is down.
    """
    if not available_for(account) or throttled(account):
        return False
    found = ldap_repo.login_directory_for(account.id)
    assert found is not None
    directory, link = found
    if not password:
        return False
    try:
        ok = check_password(connection_config(directory), link.dn, password)
    except LdapError as exc:
        metrics.count(metrics.LDAP, "bind", "unavailable")
        log.error("LDAP login for %s impossible: %s", account.id, exc)
        raise LdapLoginUnavailable(str(exc)) from None
    metrics.count(metrics.LDAP, "bind", "ok" if ok else "rejected")
    if not ok:
        failures = ephemeral().incr(_failures_key(account.id), FAILURE_WINDOW_SECONDS)
        with atomic():
            audit.record(
                audit.Actor.ldap(directory.id, via="ldap-login"), "login.ldap_password_failed",
                account.id, {"failures": failures}, unit_id=directory.unit_id,
            )
        return False
    ephemeral().delete(_failures_key(account.id))
    return True


def authenticate(ix: Any, account: Account, password: str) -> Any | None:
    """Finish the interaction ``ix`` for ``account`` when the directory accepts
    ``password`` (``idp.login.flow.finish_authentication`` with ``amr=["pwd"]``);
    None when it does not. Raises :class:`LdapLoginUnavailable` when the directory
    is down."""
    if not verify_password(account, password):
        return None
    from idp.login.flow import finish_authentication

    return finish_authentication(ix, account, amr=AMR)
