"""Rights: the permission catalogue, built-in roles and custom permission groups,
operator staff, and the one authorisation function :func:`may`.

See ``docs/architecture.md`` ("Rights").
"""

from __future__ import annotations

from idp.rights.authorization import (
    SYSTEM,
    Actor,
    ImpersonationRefused,
    NotPermitted,
    account_may,
    holds_more_rights,
    holds_more_than_employee,
    may,
    outranks,
    permissions,
    person,
    require,
    require_grant,
    require_holds,
    require_impersonation,
)
from idp.rights.catalogue import PERMISSIONS, UnknownPermission
from idp.rights.errors import RightsError

__all__ = [
    "PERMISSIONS",
    "SYSTEM",
    "Actor",
    "ImpersonationRefused",
    "NotPermitted",
    "RightsError",
    "UnknownPermission",
    "account_may",
    "holds_more_rights",
    "holds_more_than_employee",
    "may",
    "outranks",
    "permissions",
    "person",
    "require",
    "require_grant",
    "require_holds",
    "require_impersonation",
]
