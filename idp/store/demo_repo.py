"""Queries behind ``idp demo``: idempotent seeding of the demo business unit. Writes
are staged; the caller commits them (:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from idp.store.db import db
from idp.store.models import Client, Unit, UnitProfileField


def ensure_unit(
    slug: str, name: str, fields: list[tuple[str, str, bool, dict[str, Any]]]
) -> tuple[Unit, bool]:
    """The company unit ``slug`` with at least the profile ``fields`` (name, label,
    required, the other columns such as ``type``), staged when missing; True when
    anything was added."""
    changed = False
    unit = db.session.scalars(select(Unit).where(Unit.slug == slug)).first()
    if unit is None:
        unit = Unit(slug=slug, name=name, kind="company")
        db.session.add(unit)
        db.session.flush()
        changed = True
    present = {f.name for f in unit.profile_fields}
    for position, (field_name, label, required, typed) in enumerate(fields):
        if field_name not in present:
            unit.profile_fields.append(UnitProfileField(
                name=field_name, label=label, required=required, position=position, **typed
            ))
            changed = True
    return unit, changed


def replace_client_secret_hash(client_id: str, secret_hash: str) -> bool:
    """Stage a new secret hash for ``client_id``; True when the client exists."""
    client = db.session.scalars(select(Client).where(Client.client_id == client_id)).first()
    if client is None:
        return False
    client.secret_hash = secret_hash
    return True
