"""Repository of signing keys. Writes are staged; the caller commits them
(:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from idp.store.db import db
from idp.store.models import SigningKey, utcnow


def all_keys() -> Sequence[SigningKey]:
    """Every key not yet retired, oldest first."""
    return db.session.scalars(
        select(SigningKey).where(SigningKey.state != "retired").order_by(SigningKey.created_at)
    ).all()


def listing() -> Sequence[SigningKey]:
    """Every key, retired ones included, oldest first."""
    return db.session.scalars(select(SigningKey).order_by(SigningKey.created_at)).all()


def fingerprint() -> tuple[tuple[str, str], ...]:
    """A cheap summary (kid, state) that changes whenever the key set changes."""
    rows = db.session.execute(
        select(SigningKey.kid, SigningKey.state).order_by(SigningKey.kid)
    ).all()
    return tuple((r[0], r[1]) for r in rows)


def add_active(key: SigningKey) -> None:
    """Insert ``key`` as the active key of its algorithm; the previous active key of
    that algorithm stays published (in the JWKS) until retired."""
    for old in db.session.scalars(
        select(SigningKey).where(SigningKey.alg == key.alg, SigningKey.state == "active")
    ):
        old.state = "published"
    key.state = "active"
    db.session.add(key)


def add_published(key: SigningKey) -> None:
    """Insert ``key`` as published only: in the JWKS (and SAML metadata), not signing,
    until :func:`activate` -- so verifiers know it before they meet a token it signed."""
    key.state = "published"
    db.session.add(key)


def activate(kid: str) -> tuple[SigningKey, list[str]] | None:
    """Make the published key ``kid`` the active key of its algorithm; the active key
    it replaces becomes published. Returns the key and the replaced kids, or None for
    an unknown key or one not published."""
    key = db.session.get(SigningKey, kid)
    if key is None or key.state != "published":
        return None
    replaced = []
    for old in db.session.scalars(
        select(SigningKey).where(SigningKey.alg == key.alg, SigningKey.state == "active")
    ):
        old.state = "published"
        replaced.append(old.kid)
    key.state = "active"
    return key, replaced


def retire(kid: str) -> SigningKey | None:
    """Retire a published key; refuses (returns None) for unknown or active keys."""
    key = db.session.get(SigningKey, kid)
    if key is None or key.state != "published":
        return None
    key.state = "retired"
    key.retired_at = utcnow()
    return key


def set_certificate(kid: str, certificate_pem: str) -> None:
    """Store ``certificate_pem`` for ``kid`` unless one is already stored (a
    conditional ``UPDATE``: once committed, the first writer wins when workers race;
    read the winner with :func:`certificate`)."""
    db.session.execute(
        update(SigningKey)
        .where(SigningKey.kid == kid, SigningKey.certificate_pem.is_(None))
        .values(certificate_pem=certificate_pem)
    )


def certificate(kid: str) -> str | None:
    """The certificate stored for ``kid``; None for an unknown key or none stored."""
    return db.session.scalar(select(SigningKey.certificate_pem).where(SigningKey.kid == kid))
