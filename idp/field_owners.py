"""Field ownership: who may change which profile field of an account.

Each profile field has an owner: ``scim`` or ``ldap`` (HR systems), ``sso`` (an
upstream login) or ``employee`` (no entry). The owners of personal fields (names,
phone, language) are stored in ``Account.field_owners``; the owners of employer facts
(cost centre, personnel number, department, the unit's own fields ``extra.<name>``)
in the ``field_owners`` of the access they belong to (``Access.field_owners``), so
one unit's HR system owns its facts without touching another unit's. A
source may write a field it owns or one owned by a lower rank (employee < sso < HR);
the writer becomes the owner, and clearing a field hands it back to the employee.
So the employee cannot overwrite what HR owns: :func:`employee_update` raises
:class:`~idp.provisioning_errors.FieldOwned` and writes nothing. ``docs/scim.md``
documents the owners; :func:`employee_editable` tells the dashboard what to offer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from idp import audit
from idp.provisioning_errors import Busy, FieldOwned, InvalidValue, NotFound
from idp.store import scim_repo
from idp.store.models import Access, Account

DELETED = "deleted"
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

# Personal fields, on the account, with their maximum lengths.
PERSONAL_FIELDS: dict[str, int] = {
    "email": 320,
    "given_name": 200,
    "family_name": 200,
    "phone_number": 40,
    "locale": 10,
}
# Employer facts, on each access (besides the unit's own fields ``extra.<name>``).
FACT_FIELDS: dict[str, int] = {
    "cost_centre": 100,
    "personnel_number": 100,
    "department": 200,
}
PROFILE_FIELDS: dict[str, int] = {**PERSONAL_FIELDS, **FACT_FIELDS}
EXTRA_PREFIX = "extra."
EXTRA_LENGTH = 1000


class _Retry(Exception):
    pass




def is_fact(name: str) -> bool:
    """True for an employer fact (kept per access), False for a personal field."""
    return name in FACT_FIELDS or name.startswith(EXTRA_PREFIX)


def owners(row: Account | Access | None) -> dict[str, str]:
    """Owner of each owned field of an account (personal fields) or an access
    (employer facts), ``{"given_name": "scim"}``; absent means employee."""
    if row is None:
        return {}
    return {str(k): str(v) for k, v in (row.field_owners or {}).items()}


def fact_value(access: Access | None, name: str) -> Any:
    """The value of the employer fact ``name`` on ``access`` (None without one)."""
    if access is None:
        return None
    if name.startswith(EXTRA_PREFIX):
        return (access.extra or {}).get(name[len(EXTRA_PREFIX):])
    return getattr(access, name)


def may_write(source: str, owner: str | None) -> bool:
    """True when ``source`` may change a field owned by ``owner``."""
    return RANK.get(source, -1) >= RANK.get(owner or EMPLOYEE, 0)


def employee_editable(
    account: Account, access: Access | None = None, extra_names: list[str] | None = None
) -> list[str]:
    """The profile fields the employee may still edit themselves (for the dashboard):
    personal fields by the account's owners, employer facts by the owners kept on
    ``access`` (no facts without an access)."""
    mine, theirs = owners(account), owners(access)
    names = [n for n in PERSONAL_FIELDS if may_write(EMPLOYEE, mine.get(n))]
    if access is not None:
        facts = list(FACT_FIELDS) + [EXTRA_PREFIX + n for n in extra_names or []]
        names += [n for n in facts if may_write(EMPLOYEE, theirs.get(n))]
    return names


def employee_update(
    account_id: str,
    changes: dict[str, str | None],
    actor_name: audit.Actor | str,
    unit_id: str | None = None,
) -> Account:
    """Apply an employee's own profile edit: personal fields to the account, employer
    facts to the account's access to ``unit_id``. :class:`FieldOwned` names the first
    field that HR or SSO owns, and nothing is written then."""
    for _attempt in attempts():
        account = scim_repo.account(account_id)
        if account is None or account.status == DELETED:
            raise NotFound("account not found")
        access = scim_repo.access(account_id, unit_id) if unit_id else None
        mine, theirs = owners(account), owners(access)
        values: dict[str, Any] = {}
        facts: dict[str, Any] = {}
        extra = dict(access.extra or {}) if access is not None else {}
        for name, value in changes.items():
            owner = (theirs if is_fact(name) else mine).get(name)
            if not may_write(EMPLOYEE, owner):
                raise FieldOwned(f"{name} is managed by {owner}")
            value = checked(name, value, limit(name))
            if is_fact(name) and access is None:
                raise InvalidValue(f"{name} belongs to a unit's access")
            if name.startswith(EXTRA_PREFIX):
                extra[name[len(EXTRA_PREFIX) :]] = value
                facts["extra"] = extra
            elif name in FACT_FIELDS:
                facts[name] = value
            elif name in PERSONAL_FIELDS and name != "email":
                values[name] = column_value(name, value)
            else:
                raise InvalidValue(f"{name} cannot be edited here")
        if not values and not facts:
            return account
        try:
            with scim_repo.atomic():
                if not scim_repo.bump_account(account_id, account.version, values):
                    raise _Retry()
                if access is not None and facts:
                    for name, value in facts.items():
                        setattr(access, name, value)
                audit.record(
                    actor_name, "account.profile_edited", account_id,
                    {"fields": sorted(changes), **({"unit_id": unit_id} if facts else {})},
                )
        except _Retry:
            continue
        return scim_repo.account(account_id) or account
    raise Busy("the account is being changed concurrently; retry")


def claim(owned: dict[str, str], name: str, value: Any, source: str) -> None:
    """Record ``source`` as the owner of ``name`` it writes (the employee's again when
    it clears the field); :class:`FieldOwned` when ``source`` ranks too low."""
    owner = owned.get(name)
    if not may_write(source, owner):
        raise FieldOwned(f"{name} is managed by {owner}")
    if value is None:
        owned.pop(name, None)
    else:
        owned[name] = source




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
