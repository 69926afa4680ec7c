"""The one refusal of :mod:`idp.branding`."""

from __future__ import annotations


class BrandingError(ValueError):
    """A refused branding change: ``code`` says why (stable, for the API and CLI),
    ``field`` names the input at fault when there is one."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.field = code, field
