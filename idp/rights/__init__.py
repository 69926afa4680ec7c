"""Rights: the permission catalogue, built-in roles and custom permission groups,
operator staff, and the one authorisation function :func:`may`.

See ``docs/architecture.md`` ("Rights").
"""

from __future__ import annotations

from idp.rights.authorization import SYSTEM, Actor, NotPermitted, may, permissions, require
from idp.rights.catalogue import PERMISSIONS, UnknownPermission
from idp.rights.errors import RightsError

__all__ = [
    "PERMISSIONS",
    "SYSTEM",
    "Actor",
    "NotPermitted",
    "RightsError",
    "UnknownPermission",
    "may",
    "permissions",
    "require",
]
