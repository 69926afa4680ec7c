"""The error every refused rights change raises."""

from __future__ import annotations


class RightsError(ValueError):
    """A rights change is refused; ``code`` says why (``not_found``,
    ``unknown_permission``, ``invalid_group``, ``group_in_use``, ``not_staff``,
    ``not_a_customer``, ``invalid_assignment``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
