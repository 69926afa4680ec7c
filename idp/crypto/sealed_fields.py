"""The one list of values sealed with the master key, and their sealing contexts.

``idp master-key rotate`` (:mod:`idp.crypto.master_key`) re-seals exactly what
:data:`SEALED_FIELDS` names, so a value sealed anywhere else would be lost with the old
key: **a new sealed column is one line here** (``SealedField.column(Model, "attr",
lambda row: f"my-context:{row.id}")``), and its module takes its context function
from here too, so that sealing and rotating cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idp.store.models import (
    Base,
    Connector,
    InstanceSecret,
    LdapDirectory,
    OutboxMessage,
    SigningKey,
    TotpCredential,
    WebhookEndpoint,
)


def signing_key_context(kid: str) -> str:
    return f"signing-key:{kid}"


def outbox_context(message_id: str) -> str:
    return f"outbox:{message_id}"


def connector_context(connector_id: str) -> str:
    return f"connector:{connector_id}"


def ldap_bind_context(directory_id: str) -> str:
    return f"ldap-bind:{directory_id}"


def totp_context(account_id: str) -> str:
    return f"unitgate/totp/{account_id}"


def webhook_context(endpoint_id: str) -> str:
    return f"webhook:{endpoint_id}"


def instance_secret_context(name: str) -> str:
    return f"instance-secret:{name}"


@dataclass(frozen=True)
class SealedField:
    """One place a sealed value lives: ``get``/``put`` read and replace it on a row
    (``get`` None: the row holds none), ``context`` is its sealing context."""

    name: str
    model: type[Base]
    get: Callable[[Any], str | None]
    put: Callable[[Any, str], None]
    context: Callable[[Any], str]

    @classmethod
    def column(cls, model: type[Base], attr: str, context: Callable[[Any], str]) -> SealedField:
        """A text column holding the sealed value (or NULL)."""
        return cls(
            name=f"{model.__tablename__}.{attr}",
            model=model,
            get=lambda row: getattr(row, attr),
            put=lambda row, value: setattr(row, attr, value),
            context=context,
        )

    @classmethod
    def json_key(
        cls, model: type[Base], attr: str, key: str, context: Callable[[Any], str]
    ) -> SealedField:
        """A key of a JSON column (the object is replaced, so the change is seen)."""
        return cls(
            name=f"{model.__tablename__}.{attr}.{key}",
            model=model,
            get=lambda row: (getattr(row, attr) or {}).get(key),
            put=lambda row, value: setattr(row, attr, {**(getattr(row, attr) or {}), key: value}),
            context=context,
        )


SEALED_FIELDS: tuple[SealedField, ...] = (
    SealedField.column(InstanceSecret, "value_sealed", lambda r: instance_secret_context(r.name)),
    SealedField.column(SigningKey, "private_key_encrypted", lambda r: signing_key_context(r.kid)),
    SealedField.json_key(OutboxMessage, "payload", "body", lambda r: outbox_context(r.id)),
    SealedField.column(Connector, "secret_sealed", lambda r: connector_context(r.id)),
    SealedField.column(LdapDirectory, "bind_password_sealed", lambda r: ldap_bind_context(r.id)),
    SealedField.column(TotpCredential, "secret_sealed", lambda r: totp_context(r.account_id)),
    SealedField.column(WebhookEndpoint, "secret_sealed", lambda r: webhook_context(r.id)),
    SealedField.column(WebhookEndpoint, "previous_secret_sealed",
                       lambda r: webhook_context(r.id)),
)
