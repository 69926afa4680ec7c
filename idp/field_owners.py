"""Field ownership: who may change which profile field of an account.

Each profile field has an owner, stored in ``Account.field_owners``: ``scim`` or
``ldap`` (HR systems), ``sso`` (an upstream login) or ``employee`` (no entry). A
source may write a field it owns or one owned by a lower rank (employee < sso < HR);
the writer becomes the owner, and clearing a field hands it back to the employee.
So the employee cannot overwrite what HR owns, nor SSO what HR owns. This module
holds the rule; :func:`idp.accounts.profile_changes` (the account lifecycle) applies
it to every writer. ``docs/scim.md`` documents the owners;
:func:`employee_editable` tells the dashboard what to offer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from idp.provisioning_errors import InvalidValue
from idp.store.models import Account, AccountStatus

DELETED = AccountStatus.DELETED
EMPLOYEE = "employee"
RANK = {EMPLOYEE: 0, "sso": 1, "ldap": 2, "scim": 2}
MAX_ATTEMPTS = 10
BACKOFF_CAP_SECONDS = 0.05


def attempts() -> Iterator[int]:
    """The tries of an optimistic write (read, compute, write if the version is still
    the one read): :data:`MAX_ATTEMPTS` of them, with a random pause growing up to
    :data:`BACKOFF_CAP_SECONDS` before each retry, so that writers colliding on one
    row spread out instead of colliding again in lock-step (at most ~0.3 s in all)."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, 0.002 * 2**attempt)))  # noqa: S311
        yield attempt

# Profile fields on the account, with their maximum lengths.
PROFILE_FIELDS: dict[str, int] = {
    "email": 320,
    "given_name": 200,
    "family_name": 200,
    "phone_number": 40,
    "locale": 10,
    "cost_centre": 100,
    "personnel_number": 100,
    "department": 200,
}
EXTRA_PREFIX = "extra."
EXTRA_LENGTH = 1000


def owners(account: Account) -> dict[str, str]:
    """Owner of each owned field (``{"given_name": "scim"}``); absent means employee.

    Ownership recorded by older LDAP sync runs under ``extra["field_owners"]`` is
    honoured too.
    """
    legacy = (account.extra or {}).get("field_owners") or {}
    merged = {str(k): str(v) for k, v in legacy.items()} if isinstance(legacy, dict) else {}
    merged.update({str(k): str(v) for k, v in (account.field_owners or {}).items()})
    return merged


def may_write(source: str, owner: str | None) -> bool:
    """True when ``source`` may change a field owned by ``owner``."""
    return RANK.get(source, -1) >= RANK.get(owner or EMPLOYEE, 0)


def employee_editable(account: Account, extra_names: list[str] | None = None) -> list[str]:
    """The profile fields the employee may still edit themselves (for the dashboard)."""
    owned = owners(account)
    names = list(PROFILE_FIELDS) + [EXTRA_PREFIX + n for n in extra_names or []]
    return [n for n in names if may_write(EMPLOYEE, owned.get(n))]


def limit(name: str) -> int:
    if name.startswith(EXTRA_PREFIX):
        return EXTRA_LENGTH
    return PROFILE_FIELDS.get(name) or EXTRA_LENGTH


def checked(name: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string")
    value = value.strip()
    if not value:
        return None
    if len(value) > limit or "\x00" in value:
        raise InvalidValue(f"{name} is too long (at most {limit} characters)")
    return value


def column_value(name: str, value: str | None) -> str | None:
    if name in ("given_name", "family_name"):
        return value or ""
    return value
