"""Notification preferences of an access: which events send this person an e-mail.

The catalogue :data:`EVENTS` names every event a unit can notify its people of.
An access stores its own choice (``Access.notifications``, a list of event names)
or None, which means the defaults of its roles (:data:`ROLE_DEFAULTS`):

* the operational contact gets the workflow notifications (approvals, orders);
* the commercial contact is the invoice recipient (invoices, credit notes) and gets
  the budget alerts;
* a main user hears of accepted invitations and budget alerts;
* an employee gets nothing by default.

Custom permission groups add no defaults. A contact without platform access still
receives what this says: notifications are mail, not sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

EVENTS: dict[str, str] = {
    "invitation.accepted": "A person invited to the unit accepted the invitation.",
    "approval.requested": "An order waits for approval.",
    "approval.decided": "An order was approved or rejected.",
    "order.placed": "An order was placed on the unit's account.",
    "order.shipped": "An order was shipped or delivered.",
    "invoice.issued": "An invoice was issued to the unit.",
    "credit_note.issued": "A credit note was issued to the unit.",
    "budget.alert": "A budget reached its alert threshold or was exceeded.",
}

WORKFLOW: tuple[str, ...] = (
    "approval.requested", "approval.decided", "order.placed", "order.shipped",
)
INVOICES: tuple[str, ...] = ("invoice.issued", "credit_note.issued")

ROLE_DEFAULTS: dict[str, tuple[str, ...]] = {
    "main_user": ("invitation.accepted", "budget.alert"),
    "commercial_contact": (*INVOICES, "budget.alert"),
    "operational_contact": WORKFLOW,
    "employee": (),
}

MAX_EVENTS = len(EVENTS)


class UnknownEvent(ValueError):
    """An event name outside :data:`EVENTS`."""

    def __init__(self, name: object) -> None:
        super().__init__(
            f"unknown notification event {name!r}; one of " + ", ".join(sorted(EVENTS))
        )
        self.name = name


def validate(names: Iterable[Any]) -> list[str]:
    """``names`` deduplicated, in catalogue order; :class:`UnknownEvent` for the
    first name outside the catalogue."""
    wanted: set[str] = set()
    for name in names:
        if not isinstance(name, str) or name not in EVENTS:
            raise UnknownEvent(name)
        wanted.add(name)
    return [name for name in EVENTS if name in wanted]


def defaults(roles: Iterable[str]) -> list[str]:
    """The events the ``roles`` send by default, in catalogue order."""
    wanted = {event for role in roles for event in ROLE_DEFAULTS.get(role, ())}
    return [name for name in EVENTS if name in wanted]


def effective(roles: Iterable[str], chosen: list[str] | None) -> list[str]:
    """What an access with ``roles`` and the stored choice ``chosen`` receives."""
    return list(chosen) if chosen is not None else defaults(roles)


def describe() -> list[dict[str, Any]]:
    """The catalogue as plain data: name, description, roles receiving it by default."""
    return [
        {
            "name": name,
            "description": text,
            "default_for": [role for role, events in ROLE_DEFAULTS.items() if name in events],
        }
        for name, text in EVENTS.items()
    ]
