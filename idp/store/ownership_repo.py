"""Queries behind :mod:`idp.provisioning.ownership`: what already reaches an account."""

from __future__ import annotations

from sqlalchemy import exists, select

from idp.store.db import db
from idp.store.models import (
    Access,
    Connector,
    LdapLink,
    ScimUser,
    UpstreamIdentity,
)


def reached_by_others(account_id: str, unit_id: str) -> bool:
    """True when the account is a member of another unit, has a directory record or
    link (SCIM or LDAP, of any unit), or an upstream identity of another unit's
    connector. One round trip."""
    member_elsewhere = exists().where(
        Access.account_id == account_id, Access.unit_id != unit_id
    )
    scim_record = exists().where(ScimUser.account_id == account_id)
    ldap_link = exists().where(LdapLink.account_id == account_id)
    foreign_upstream = exists().where(
        UpstreamIdentity.account_id == account_id,
        UpstreamIdentity.connector_id == Connector.id,
        Connector.unit_id != unit_id,
    )
    return bool(
        db.session.scalar(
            select(member_elsewhere | scim_record | ldap_link | foreign_upstream)
        )
    )
