"""The errors of the provisioning domain (:mod:`idp.provisioning.service`,
:mod:`idp.accounts.field_owners`, :mod:`idp.provisioning.unit_groups`). ``str(exc)`` is
safe to show to the client: it never holds a stack trace or a stored value."""

from __future__ import annotations


class ProvisioningError(Exception):
    """Base of the errors below."""


class NotFound(ProvisioningError):
    pass


class Conflict(ProvisioningError):
    """A uniqueness rule (userName, e-mail address) would be broken."""


class InvalidValue(ProvisioningError):
    pass


class PreconditionFailed(ProvisioningError):
    """The caller's ``if_match`` version is not the current one."""


class FieldOwned(ProvisioningError):
    """The writer may not change a field another source owns."""


class Busy(ProvisioningError):
    """Too many concurrent writers; retrying later will succeed."""
