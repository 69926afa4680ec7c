"""The catalogue of webhook event types: each type's meaning and the JSON Schema
(draft 2020-12) of its ``data``. :func:`idp.webhooks.emit` refuses a type that is
not listed here, and ``GET /api/v1/events/schema`` publishes :func:`document`.

Adding an event type is one line in :data:`EVENTS` (``_event(name, description,
field=SCHEMA, ...)``; every field listed is required, ``None``-able ones say so in
their schema), then one :func:`idp.webhooks.emit` call at the change's one home,
inside its transaction. Payloads carry ids and non-secret facts only: never codes,
secrets, passwords, tokens or links.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ID: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}
OPT_ID: dict[str, Any] = {"type": ["string", "null"], "maxLength": 64}
TEXT: dict[str, Any] = {"type": "string", "maxLength": 200}
OPT_TEXT: dict[str, Any] = {"type": ["string", "null"], "maxLength": 200}
NAMES: dict[str, Any] = {"type": "array", "items": {"type": "string", "maxLength": 100}}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
ACCESS_STATUS: dict[str, Any] = {"enum": ["invited", "active", "suspended"]}
AMOUNT: dict[str, Any] = {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$",
                          "description": "A decimal amount in the currency's minor-unit "
                          "precision (\"100.00\"), never a float."}
CURRENCY: dict[str, Any] = {"type": "string", "pattern": "^[A-Z]{3}$"}


@dataclass(frozen=True)
class EventType:
    """One event type: its name, what it means and the schema of its ``data``."""

    name: str
    description: str
    data: dict[str, Any]

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the whole payload (the Standard Webhooks envelope)."""
        return {
            "title": self.name,
            "description": self.description,
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": self.name},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": self.data,
            },
        }


def _event(name: str, description: str, **fields: dict[str, Any]) -> EventType:
    return EventType(name, description, {
        "type": "object", "required": sorted(fields), "additionalProperties": False,
        "properties": fields,
    })


EVENTS: dict[str, EventType] = {e.name: e for e in (
    _event("access.created", "A person was given an access to the unit.",
           access_id=ID, account_id=ID, unit_id=ID, status=ACCESS_STATUS, roles=NAMES,
           platform_access={"type": "boolean"}, source=TEXT),
    _event("access.updated", "An access changed (roles, platform access, settings, "
           "facts, end date, reactivation); `changed` names the fields, not the values.",
           access_id=ID, account_id=ID, unit_id=ID, status=ACCESS_STATUS, changed=NAMES,
           source=TEXT),
    _event("access.suspended", "An access was suspended: it grants nothing until "
           "reactivated.", access_id=ID, account_id=ID, unit_id=ID, source=TEXT),
    _event("access.removed", "An access was removed.",
           access_id=ID, account_id=ID, unit_id=ID, source=TEXT),
    _event("signin.succeeded", "A member of the unit signed in at a merchant "
           "(an OpenID Connect or SAML relying party).",
           account_id=ID, unit_id=ID, merchant_id=ID, protocol=TEXT),
    _event("consent.granted", "A member of the unit consented to release data to a "
           "merchant.", account_id=ID, unit_id=ID, merchant_id=ID, scopes=NAMES),
    _event("consent.withdrawn", "A member of the unit withdrew a consent.",
           account_id=ID, unit_id=ID, merchant_id=ID),
    _event("invitation.sent", "An invitation to register was sent (or sent again).",
           invitation_id=ID, access_id=ID, account_id=ID, unit_id=ID,
           sms_required={"type": "boolean"}),
    _event("invitation.accepted", "An invited person registered: the access is active.",
           invitation_id=ID, access_id=ID, account_id=ID, unit_id=ID),
    _event("invitation.revoked", "A pending invitation was revoked.",
           invitation_id=ID, access_id=ID, account_id=ID, unit_id=ID),
    _event("scim.changed", "The unit's SCIM client created, changed, deactivated or "
           "deleted a user.", account_id=ID, unit_id=ID,
           operation={"enum": ["created", "updated", "deactivated", "reactivated",
                               "deleted"]}),
    _event("ldap.synced", "An LDAP directory sync of the unit changed accounts "
           "(counts; a sync that changed nothing sends no event).",
           directory_id=ID, unit_id=ID, created=COUNT, updated=COUNT, deactivated=COUNT,
           reactivated=COUNT),
    _event("impersonation.started", "Someone with `impersonate` began to act as a member "
           "of the unit (\"log in as account\"); tokens issued meanwhile carry `act`.",
           impersonation_id=ID, unit_id=ID, access_id=ID, account_id=ID,
           actor_kind={"enum": ["account", "staff"]}, actor_account_id=ID,
           ends_at={"type": "string", "format": "date-time"}),
    _event("impersonation.ended", "An impersonation ended (`how`: ended by the actor, "
           "expired, access_ended, signed_out or actor_blocked); the grants issued "
           "meanwhile were revoked.",
           impersonation_id=ID, unit_id=ID, account_id=ID, how=TEXT,
           grants_revoked=COUNT),
    *(_event(name, text, purchase_id=ID, unit_id=ID, account_id=ID, client_id=TEXT,
             order_ref=TEXT, status=TEXT, reason=OPT_TEXT, amount=AMOUNT, currency=CURRENCY)
      for name, text in (
          ("purchase.approved", "A purchase was approved: by the budget at once, or by an "
           "approver; the amount is reserved."),
          ("purchase.pending_approval", "A purchase waits for an approver's decision."),
          ("purchase.refused", "A purchase was refused (`reason`: a code such as "
           "`over_budget`, `rejected`, `approval_expired`)."),
          ("purchase.confirmed", "The merchant confirmed the order: the reservation is spent."),
          ("purchase.cancelled", "The order was cancelled: the reservation is released."),
          ("purchase.amount_changed", "The amount of a purchase changed (by the merchant, or "
           "by an approver: the merchant must follow)."),
      )),
)}


class UnknownEventType(ValueError):
    """An event type that is not in :data:`EVENTS`."""


def known(name: str) -> EventType:
    """The catalogue entry of ``name``; :class:`UnknownEventType` otherwise."""
    try:
        return EVENTS[name]
    except KeyError:
        raise UnknownEventType(name) from None


def document() -> dict[str, Any]:
    """The published catalogue: per event type its description and the JSON Schema
    (draft 2020-12) of the payload a receiver gets."""
    return {
        "specification": "Standard Webhooks",
        "json_schema_dialect": "draft 2020-12",
        "events": {name: {"description": e.description, "schema": e.schema()}
                   for name, e in sorted(EVENTS.items())},
    }
