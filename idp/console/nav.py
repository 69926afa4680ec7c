"""The console's navigation, as a registry: each page module registers its own entry
(:func:`register`) when it is imported, so nobody edits a shared list to add a page.

An entry is shown in a unit's navigation when the viewer holds its ``permission`` in
that unit (the same :func:`idp.rights.permissions` set the page's guard decides with,
computed once per page). Its ``endpoint`` takes the unit id as its one URL value
``unit`` (``url_for(endpoint, unit=...)``).

Example (in a page module of ``idp.console``)::

    from idp.console import nav
    from flask_babel import lazy_gettext as _l

    nav.register("domains", _l("Domains"), "console.domains", "domains.manage", order=40)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from idp.rights.catalogue import PERMISSIONS


@dataclass(frozen=True)
class Entry:
    """One item of a unit's navigation."""

    section_id: str  # also the ``current`` value a page passes to mark itself
    label: Any  # a lazy translation (``lazy_gettext``)
    endpoint: str
    permission: str
    order: int


_ENTRIES: dict[str, Entry] = {}


def register(section_id: str, label: Any, endpoint: str, permission: str, order: int = 100) -> None:
    """Add (or, registered again under the same ``section_id``, replace) a navigation
    entry. ``permission`` must be one of the catalogue (:data:`PERMISSIONS`)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    _ENTRIES[section_id] = Entry(section_id, label, endpoint, permission, order)


def entries() -> list[Entry]:
    """Every registered entry, by ``order`` then ``section_id``."""
    return sorted(_ENTRIES.values(), key=lambda e: (e.order, e.section_id))


def visible(held: Iterable[str]) -> list[Entry]:
    """The entries whose permission is among ``held`` (a viewer's permissions in a unit)."""
    have = set(held)
    return [e for e in entries() if e.permission in have]


def permissions_used() -> frozenset[str]:
    """The permissions some entry needs: holding one of them in a unit makes it a unit
    the viewer administers (the console's unit list)."""
    return frozenset(e.permission for e in _ENTRIES.values())
