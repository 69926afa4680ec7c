"""Field ownership: who may change which profile field of an account.

Each profile field has an owner: ``scim`` or ``ldap`` (HR systems), ``sso`` (an
upstream login) or ``employee`` (no entry). The owners of personal fields (names,
phone, language) are stored in ``Account.field_owners``; the owners of employer facts
(cost centre, personnel number, department, the unit's own fields ``extra.<name>``)
in the ``field_owners`` of the access they belong to (``Access.field_owners``), so
one unit's HR system owns its facts without touching another unit's. A
source may write a field it owns or one owned by a lower rank (employee < sso < HR);
the writer becomes the owner, and clearing a field hands it back to the employee.
So the employee cannot overwrite what HR owns, nor SSO what HR owns. This module
holds the rule (:func:`take`); :func:`idp.accounts.lifecycle.profile_changes` (personal fields)
and :func:`idp.accounts.accesses.set_facts` (employer facts) apply it, and
:func:`idp.accounts.lifecycle.stage_changes` splits a writer's mixed change between them.
``docs/scim.md`` documents the owners;
:func:`employee_editable` tells the dashboard what to offer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from idp.provisioning.errors import FieldOwned, InvalidValue
from idp.store.models import Access, Account, AccountStatus

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

# Personal fields, on the account, with their maximum lengths.
PERSONAL_FIELDS: dict[str, int] = {
    "email": 320,
    "given_name": 200,
    "family_name": 200,
    "phone_number": 40,
    "locale": 35,  # a BCP 47 language tag (RFC 5646 section 4.4.1)
}
# Employer facts, on each access (besides the unit's own fields ``extra.<name>``).
FACT_FIELDS: dict[str, int] = {
    "cost_centre": 100,
    "personnel_number": 100,
    "department": 200,
}
# The fields of the account's profile (personal only; the facts are the accesses').
PROFILE_FIELDS: dict[str, int] = PERSONAL_FIELDS
# Every field a writer may send, personal or fact, with its maximum length.
FIELD_LENGTHS: dict[str, int] = {**PERSONAL_FIELDS, **FACT_FIELDS}
EXTRA_PREFIX = "extra."
EXTRA_LENGTH = 1000


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


@dataclass
class Change:
    """What a writer's change does to an account (personal fields) or an access
    (employer facts): the column ``values`` to set (``extra`` and ``field_owners``
    whole when they change), the names of the changed fields, and the fields left
    alone because a higher-ranked writer owns them."""

    values: dict[str, Any] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, other: Change) -> None:
        """Fold ``other`` (the other half of a mixed change) into this one's names."""
        self.fields += other.fields
        self.skipped += other.skipped


def take(owned: dict[str, str], name: str, value: Any, source: str, *, refuse: bool) -> bool:
    """The one ownership rule, for account fields and access facts alike: may
    ``source`` write ``value`` into ``name`` given its current owners ``owned``?

    A field owned by a higher-ranked writer is not written: :class:`FieldOwned` when
    ``refuse``, else False (the caller leaves it alone). Otherwise ``owned`` is
    updated in place (``source`` becomes the owner of what it sets; clearing a field,
    or the employee writing it, leaves it to the employee) and True is returned."""
    owner = owned.get(name)
    if not may_write(source, owner):
        if refuse:
            raise FieldOwned(f"{name} is managed by {owner}")
        return False
    if value is None or value == "" or source == EMPLOYEE:
        owned.pop(name, None)
    else:
        owned[name] = source
    return True


def limit(name: str) -> int:
    if name.startswith(EXTRA_PREFIX):
        return EXTRA_LENGTH
    return PERSONAL_FIELDS.get(name) or FACT_FIELDS.get(name) or EXTRA_LENGTH


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
