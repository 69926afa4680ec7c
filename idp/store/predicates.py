"""A small, protocol-neutral predicate language for repository searches.

Callers (the SCIM filter compiler, admin searches) describe *what* they want with
these frozen dataclasses; repositories translate them into SQL over the fields they
expose (see ``idp.store.predicate_sql.USER_FIELDS``). Nothing here knows SCIM.

Comparisons are two-valued: an unset field (SQL NULL) never equals, contains or
orders against anything, so ``Negate(Compare(f, "eq", v))`` matches records whose
``f`` is unset, as a reader expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OPERATORS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")

Scalar = str | bool | int | float | datetime | None


@dataclass(frozen=True)
class Compare:
    """``field <op> value``; strings compare case-insensitively unless ``case_exact``."""

    field: str
    op: str
    value: Scalar
    case_exact: bool = False


@dataclass(frozen=True)
class Present:
    """``field`` has a value (not NULL, not the empty string)."""

    field: str


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True)
class Negate:
    part: Predicate


@dataclass(frozen=True)
class Constant:
    """Always (``True``) or never (``False``) matches."""

    value: bool


@dataclass(frozen=True)
class Related:
    """Some related record (``relation``, e.g. a user's ``groups``) matches ``where``."""

    relation: str
    where: Predicate


Predicate = Compare | Present | AllOf | AnyOf | Negate | Constant | Related


class UnknownField(ValueError):
    """A predicate names a field or relation the repository does not expose."""


class BadComparison(ValueError):
    """An operator that cannot apply to the field's type (``gt`` on a boolean, ...)."""
