"""Clients of the administration API (``/api/v1``): automation that acts for one
unit (and its sub-units) or for the whole operator.

An admin client is an OIDC client that may only use the client-credentials grant
(RFC 6749 §4.4) with the scope ``admin``, a scope no merchant can register or ask
for, plus a row in ``admin_clients`` naming the unit it acts for (none: the
operator). What it may do is decided by :func:`idp.rights.authorization.may` like
for everyone else (a unit's client holds the administration permissions there, an
operator client every permission). Deleting it revokes it at once: its tokens die
with the registration (:mod:`idp.oidc.liveness`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp import audit
from idp.release import clients
from idp.rights.errors import RightsError
from idp.store import rights_repo
from idp.store.models import AdminClient
from idp.store.unit_of_work import atomic
from idp.units import registry as units

SCOPE = "admin"


@dataclass(frozen=True)
class Created:
    """A new admin client; ``client_secret`` is shown once and stored only hashed."""

    client_id: str
    client_secret: str
    unit_id: str | None
    name: str


def create(
    unit_ref: str | None, name: str | None = None, actor: audit.Actor | str = "system"
) -> Created:
    """Register an admin client for the unit ``unit_ref`` (id or slug) or, with None,
    for the operator. Raises :class:`RightsError` (``not_found``, ``invalid_name``)."""
    unit = None
    if unit_ref is not None:
        try:
            unit = units.get(unit_ref)
        except units.UnitError as exc:
            raise RightsError(exc.code, str(exc)) from exc
    label = name or (f"Admin API: {unit.name}" if unit else "Admin API: operator")
    try:
        with atomic():
            client, secret = clients.stage_service_client(label, SCOPE)
            rights_repo.flush()  # the client row before the row that references it
            rights_repo.stage(
                AdminClient(
                    client_id=client.client_id,
                    unit_id=unit.id if unit else None,
                    created_by=audit.as_actor(actor).display,
                )
            )
            audit.record(
                actor,
                "admin_client.created",
                target=client.client_id,
                unit_id=unit.id if unit else None,
                details={"scope": "unit" if unit else "operator"},
            )
    except clients.ClientRegistrationError as exc:
        raise RightsError("invalid_name", str(exc)) from exc
    return Created(client.client_id, secret, unit.id if unit else None, client.name)


def delete(client_id: str, actor: audit.Actor | str = "system") -> bool:
    """Delete an admin client and revoke its tokens; False when there was none."""
    row = rights_repo.admin_client(client_id)
    if row is None:
        return False
    client = clients.get(client_id)
    with atomic():  # the event and the removal together; the event is the only one
        audit.record(actor, "admin_client.deleted", target=client_id, unit_id=row.unit_id)
        if client is not None:
            clients.stage_removal(client)
    return client is not None


def describe_all() -> list[dict[str, Any]]:
    """Every admin client: id, name, unit (id and slug; None for the operator)."""
    out = []
    for row in rights_repo.admin_clients():
        client = clients.get(row.client_id)
        unit = units.find(row.unit_id) if row.unit_id else None
        out.append(
            {
                "client_id": row.client_id,
                "name": client.name if client else "",
                "unit_id": row.unit_id,
                "unit": unit.slug if unit else None,
                "created_at": row.created_at.isoformat(),
                "created_by": row.created_by,
            }
        )
    return out
