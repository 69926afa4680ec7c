"""Repository of grants and their refresh tokens.

A :class:`~idp.store.models.Grant` is the family of tokens one authorization produced.
Revoking the grant (``revoked_at``) revokes every refresh and access token of the
family: access tokens carry the grant id and are checked against it at the userinfo
and introspection endpoints. Refresh tokens are stored only as keyed hashes.

Writes only stage; the caller commits (:func:`idp.store.unit_of_work.atomic`). One
documented exception: :func:`claim_refresh` commits itself, because its atomic
conditional UPDATE must be visible to every other worker before the new tokens go out.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import joinedload

from idp.store import accesses_repo, unit_of_work
from idp.store.db import db, keep, rowcount
from idp.store.models import Account, Grant, RefreshToken, utcnow


def create(grant: Grant, refresh_hash: str | None) -> Grant:
    """Stage ``grant`` and, when given, its first refresh token."""
    db.session.add(grant)
    if refresh_hash is not None:
        db.session.add(RefreshToken(token_hash=refresh_hash, grant_id=grant.id))
    return grant


def get(grant_id: str) -> Grant | None:
    """The grant with this id, revoked or not, or None."""
    return db.session.get(Grant, grant_id)


def live_with_account(grant_id: str, now: datetime | None = None) -> tuple[Grant, Account] | None:
    """The grant if it exists, is not revoked and has not reached its absolute expiry,
    with its account, in one query built once (every request
    that presents an access token runs it); the account is kept for the request
    (:func:`idp.store.db.keep`)."""
    row = db.session.execute(_LIVE_WITH_ACCOUNT, {"g": grant_id, "now": now or utcnow()}).first()
    if row is None:
        return None
    return row[0], keep(row[1])


_LIVE_WITH_ACCOUNT = (
    select(Grant, Account)
    .join(Account, Account.id == Grant.account_id)
    .where(Grant.id == bindparam("g"), Grant.revoked_at.is_(None),
           Grant.expires_at > bindparam("now"))
)


def refresh_token(token_hash: str) -> RefreshToken | None:
    """The refresh token with this keyed hash, with its grant loaded, or None."""
    return db.session.scalars(
        select(RefreshToken)
        .options(joinedload(RefreshToken.grant))
        .where(RefreshToken.token_hash == token_hash)
    ).first()


def claim_refresh(token_id: str) -> bool:
    """Mark a refresh token used, and commit. Atomic: of concurrent callers exactly
    one gets True; a token already used gives False (reuse). The one repository
    function here that commits (see the module docstring)."""
    with unit_of_work.claim():
        result = db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
            .values(used_at=utcnow())
        )
    return rowcount(result) == 1


def add_refresh(grant_id: str, token_hash: str) -> None:
    """Stage the next refresh token of a family (rotation)."""
    db.session.add(RefreshToken(token_hash=token_hash, grant_id=grant_id))


def revoke(grant_id: str) -> bool:
    """Stage the revocation of one grant and so every token of its family; True when
    it was live."""
    result = db.session.execute(
        update(Grant)
        .where(Grant.id == grant_id, Grant.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return rowcount(result) == 1


def revoke_for_account(account_id: str) -> int:
    """Stage the revocation of every live grant of an account (blocking, SCIM
    deactivation, deletion); the caller commits it with its own change.

    Refresh tokens of these grants stop working at once; their access tokens fail at
    userinfo and introspection. Returns how many grants were revoked.
    """
    result = db.session.execute(
        update(Grant)
        .where(Grant.account_id == account_id, Grant.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return rowcount(result)


def revoke_for_unit(account_id: str, unit_id: str) -> int:
    """Stage the revocation of every live grant of an account issued for one unit (the
    account left it); the caller commits. Returns how many grants."""
    result = db.session.execute(
        update(Grant)
        .where(
            Grant.account_id == account_id,
            Grant.unit_id == unit_id,
            Grant.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return rowcount(result)


def revoke_for_units(unit_ids: list[str]) -> int:
    """Stage the revocation of every live grant issued for one of ``unit_ids``,
    whoever holds it (a customer blocked); the caller commits. Returns how many."""
    if not unit_ids:
        return 0
    result = db.session.execute(
        update(Grant)
        .where(Grant.unit_id.in_(unit_ids), Grant.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return rowcount(result)


def revoke_for_merchant(account_id: str, merchant_id: str) -> int:
    """Stage the revocation of every live grant of an account at one merchant
    (consent withdrawn): its refresh tokens stop at once, its access tokens fail at
    userinfo and introspection. Returns how many grants were revoked."""
    return _update_live_at_merchant(account_id, merchant_id, revoked_at=utcnow())


def _update_live_at_merchant(account_id: str, merchant_id: str, **values: object) -> int:
    """Stage ``values`` on every live grant of the account at the merchant; how many."""
    result = db.session.execute(
        update(Grant)
        .where(
            Grant.account_id == account_id,
            Grant.merchant_id == merchant_id,
            Grant.revoked_at.is_(None),
        )
        .values(**values)
    )
    return rowcount(result)


def set_withheld(account_id: str, merchant_id: str, withheld: list[str]) -> int:
    """Stage ``withheld`` (the items the consent now leaves out) on every live grant of
    the account at the merchant, so its tokens release what the consent says from
    the next token, refresh or userinfo answer on. Returns how many grants changed."""
    return _update_live_at_merchant(account_id, merchant_id, withheld=list(withheld))


def last_unit(account_id: str, client_id: str) -> str | None:
    """The business unit of the account's most recent grant at ``client_id`` (the unit
    chosen when it last signed in there) whose access still grants, or None. A unit
    that suspended or ended the access is never chosen again silently."""
    params = {"a": account_id, "c": client_id, "now": utcnow()}
    return db.session.connection().execute(_LAST_UNIT, params).scalar()


_GRANTS = cast(Table, Grant.__table__)
_ACCESSES = accesses_repo.ACCESSES
# Built once: the silent sign-in's hot path runs it on every authorization.
_LAST_UNIT = (
    select(_GRANTS.c.unit_id)
    .select_from(_GRANTS.outerjoin(_ACCESSES, and_(
        _ACCESSES.c.account_id == _GRANTS.c.account_id,
        _ACCESSES.c.unit_id == _GRANTS.c.unit_id,
    )))
    .where(_GRANTS.c.account_id == bindparam("a"), _GRANTS.c.client_id == bindparam("c"),
           or_(_GRANTS.c.unit_id.is_(None), accesses_repo.granting_sql(bindparam("now"))))
    .order_by(_GRANTS.c.created_at.desc())
    .limit(1)
)


def for_account(account_id: str) -> list[Grant]:
    """Every grant of an account, newest first."""
    return list(
        db.session.scalars(
            select(Grant).where(Grant.account_id == account_id).order_by(Grant.created_at.desc())
        )
    )
